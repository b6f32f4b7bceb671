"""A case's prediction: its run's phases composed as points, priced sample by sample, and
combined into the published quantity.

Every phase is one model point (its workload preset at the case's CPU profile, roadmap stage
and overrides), evaluated at each of the machine's possible CPU counts. Per cost sample
``s`` and CPU count ``v`` the run's time of each alternative (:func:`model.evaluate.sample_breakdown`)
is the sum over phases of ``t_op x ops / busy CPUs``: phases run one after another, and a
``make -j`` phase on ``v`` CPUs takes ``1/v`` of its CPU time in wall time. The quantity is
then a distribution over ``(v, s)`` pairs with weight ``P(v) / S`` each: the cost samples
and the uncertain CPU count together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig
from scipy.special import ndtri

from asi_slowdown.model.costs import Correlation, CostSpec, sample_costs, stream_uniforms
from asi_slowdown.model.evaluate import QUANTILES, quantiles, sample_breakdown
from asi_slowdown.model.mechanism import EXIT_REASONS, EXIT_SOURCES
from asi_slowdown.pipeline.calibrate.cases import Case
from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import ModelProfile, model_profile

SIDES = ("measured", "reference")


@dataclass(frozen=True)
class Profile:
    """A CPU profile's costs as the model samples them."""

    name: str
    specs: Mapping[str, CostSpec]
    ghz: float
    correlations: tuple[Correlation, ...] = ()

    def costs(self, samples: int, seed: int) -> dict[str, np.ndarray]:
        return sample_costs(
            self.specs, samples, seed=seed, ghz=self.ghz, correlations=self.correlations
        )


def profile_from_config(cfg: DictConfig, model: ModelProfile | None = None) -> Profile:
    """A composed config's :class:`Profile`, from its model inputs (``model``, if made already)."""
    model = model_profile(cfg) if model is None else model
    return Profile(str(cfg.cpu.name), model.cost_specs, model.ghz, model.correlations)


@dataclass
class CasePoints:
    """A case's model points, stacked: one row per (side, phase, CPU count).

    ``rows[side][phase]`` holds, per CPU count of the machine, the row of that phase's point;
    ``scale[phase][v]`` turns a time per op into the phase's wall time (ops / busy CPUs).
    """

    case: Case
    columns: dict[str, np.ndarray]
    rows: dict[str, list[np.ndarray]]
    scale: np.ndarray  # (phases, values)
    probabilities: np.ndarray  # (values,)
    profile: Profile


def phase_overrides(
    case: Case, phase_index: int, side: str, extra: Sequence[str] = ()
) -> list[str]:
    """The Hydra overrides of one phase's point: its preset, the case's machine and stage,
    the phase's and the case's (or the reference side's) overrides, then ``extra`` (a
    what-if the command line applies to every case)."""
    phase = case.benchmark.phases[phase_index]
    own = case.overrides if side == "measured" else (case.reference_overrides or ())
    return [
        f"workload={phase.workload}",
        f"cpu={case.cpu}",
        f"mitigations={case.stage}",
        *phase.overrides,
        *own,
        *extra,
    ]


def case_points(case: Case, composer: Composer, extra: Sequence[str] = ()) -> CasePoints:
    """Compose every phase of ``case`` (on both sides where it has a reference) once, and lay
    its points out at each CPU count of the machine. A bad override or preset is a one-line
    :class:`ConfigError` naming the case."""
    sides = SIDES if case.reference_overrides is not None else SIDES[:1]
    values = case.cpus.values
    points: list[dict] = []
    rows: dict[str, list[np.ndarray]] = {}
    scale = np.zeros((len(case.benchmark.phases), len(values)))
    profile = None
    for side in sides:
        rows[side] = []
        for i, phase in enumerate(case.benchmark.phases):
            try:
                cfg, model = composer.compose_profile(phase_overrides(case, i, side, extra))
            except ConfigError as exc:
                raise ConfigError(f"validation case {case.name!r}: {exc}") from None
            if profile is None:
                profile = profile_from_config(cfg, model)
            base = dict(model.point)
            index = []
            for j, v in enumerate(values):
                busy = v if phase.parallel is None else phase.parallel
                scale[i, j] = phase.ops / busy
                index.append(len(points))
                # the point runs one job per busy CPU (at least one)
                points.append(base | {"cpus": max(1, math.ceil(busy))})
            rows[side].append(np.array(index))
    columns = {k: np.array([p[k] for p in points]) for k in points[0]}
    return CasePoints(case, columns, rows, scale, np.array(case.cpus.probabilities), profile)


def run_times(cp: CasePoints, breakdown: Mapping[str, np.ndarray], kind: str, side: str):
    """The run's wall time [ns] of alternative ``kind`` on ``side``: (values, samples)."""
    t = breakdown[kind]
    return sum(
        cp.scale[i][:, None] * t[cp.rows[side][i]] for i in range(len(cp.case.benchmark.phases))
    )


def exit_count(quantity: str, breakdown: Mapping[str, np.ndarray]) -> np.ndarray:
    """An exit quantity (:data:`pipeline.calibrate.measurements.QUANTITY_UNITS`) per sample of a
    one-phase run: per op, or per second of ASI time per CPU."""
    asi_seconds = breakdown["asi"] * 1e-9
    if quantity == "exits_per_op":
        return sum(breakdown[f"exits_{s}"] for s in EXIT_SOURCES)
    for prefix, per_second in (
        ("exit_rate_source_", True),
        ("exits_reason_", False),
        ("exit_rate_", True),
        ("exits_", False),
    ):
        if quantity.startswith(prefix):
            name = quantity.removeprefix(prefix)
            sources = (
                EXIT_REASONS[name] if "reason" in prefix or prefix == "exit_rate_" else (name,)
            )
            count = sum(breakdown[f"exits_{s}"] for s in sources)
            return count / asi_seconds if per_second else count
    raise ValueError(f"not an exit quantity: {quantity}")


def quantity_samples(cp: CasePoints, costs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The case's quantity for every (CPU count, cost sample): shape (values, samples)."""
    b = sample_breakdown(cp.columns, costs)
    q = cp.case.quantity
    if q in ("slowdown", "throughput_loss"):
        native = run_times(cp, b, "native", "measured")
        asi = run_times(cp, b, "asi", "measured")
        return asi / native - 1 if q == "slowdown" else 1 - native / asi
    if q in ("default_slowdown", "default_throughput_loss"):
        default = run_times(cp, b, "default", "measured")
        if cp.case.reference_overrides is None:
            reference = run_times(cp, b, "native", "measured")
        else:
            reference = run_times(cp, b, "default", "reference")
        return default / reference - 1 if q == "default_slowdown" else 1 - reference / default
    return exit_count(q, b)[cp.rows["measured"][0]]


def weighted_quantiles(values: np.ndarray, probabilities: np.ndarray, qs: Sequence[float]):
    """Quantiles of the mixture: sample ``s`` of CPU count ``v`` weighs ``P(v) / samples``.
    One CPU count: exactly :func:`model.evaluate.quantiles` (numpy's linear definition)."""
    if values.shape[0] == 1:
        return quantiles(values, qs)[:, 0]
    flat = values.ravel()
    weights = np.repeat(probabilities / values.shape[1], values.shape[1])
    order = np.argsort(flat, kind="stable")
    cumulative = np.cumsum(weights[order]) - 0.5 * weights[order]
    return np.interp(qs, cumulative, flat[order])


def measured(cp: CasePoints, values: np.ndarray, seed: int) -> np.ndarray:
    """What a run would measure: each (CPU count, cost sample) value with the published
    run-to-run spread added, a normal draw per sample (absolute, or in log space for exit
    counts) from a stream of its own, keyed by the case's name."""
    z = ndtri(stream_uniforms(values.shape[1], seed=seed, cost=f"spread/{cp.case.name}"))
    if cp.case.relative:
        return values * np.exp(cp.case.spread * z)[None, :]
    return values + cp.case.spread * z[None, :]


@dataclass(frozen=True)
class Prediction:
    """A case's predictive distribution (its quantity's unit): the model's p50 and mean, and
    the 90 % band of a measurement, p05 to p95: the cost samples and uncertain inputs, plus the
    published number's run-to-run spread (a single run scatters that much around the model)."""

    p05: float
    p50: float
    p95: float
    mean: float

    def inside(self, value: float) -> bool:
        return self.p05 <= value <= self.p95


def predict(cp: CasePoints, costs: Mapping[str, np.ndarray], seed: int = 0) -> Prediction:
    values = quantity_samples(cp, costs)
    (p50,) = weighted_quantiles(values, cp.probabilities, [QUANTILES["p50"]])
    p05, p95 = weighted_quantiles(
        measured(cp, values, seed), cp.probabilities, [QUANTILES["p05"], QUANTILES["p95"]]
    )
    mean = float(np.sum(values.mean(axis=1) * cp.probabilities))
    return Prediction(float(p05), float(p50), float(p95), mean)


def statistic(cp: CasePoints, costs: Mapping[str, np.ndarray]) -> float:
    """What a fit compares with the published value: the p50 of a time quantity (the mean
    over CPU counts for one plug-in sample, where a median would be a step function of the
    costs), the mean of an exit count (as :mod:`pipeline.calibrate.fit` does)."""
    values = quantity_samples(cp, costs)
    if cp.case.relative or values.shape[1] == 1:
        return float(np.sum(values.mean(axis=1) * cp.probabilities))
    return float(weighted_quantiles(values, cp.probabilities, [0.5])[0])
