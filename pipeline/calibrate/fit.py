"""Fit a CPU profile's uncertain costs to measurements: the numerical core of ``asi-calibrate``.

Unknowns are the log-medians ``theta_c`` of the profile's non-fixed costs (in
each cost's own unit) and, for each workload measured natively, its
``base_time`` [ns]. Each datum is an :class:`Observation`: a native or ASI time
per op measured by fio, a published throughput loss, or a published exit
count (per op or per second per CPU, by exit source or by the prototype's
exit reason: :data:`STATISTIC`). Any mix is fitted at once, one whitened
residual each. Two observations at the same point that differ only in
``cpu.ibpb`` (an IBPB on/off pair) share every cost but IBPB, so their
difference pins the IBPB cost and their level the rest of the exit pair.

Method
------
1. **Prior.** Every cost's spec becomes a normal in log space whose 5th/95th
   percentiles are the spec's ``low``/``high`` and whose centre is its
   median (exact for ``lognormal``, a close stand-in for ``loguniform`` and
   ``uniform``). The fit never leaves ``[low, high]`` (bounded
   ``scipy.optimize.least_squares``), and the prior term pulls costs the
   data cannot see back to their prior medians.
2. **Posterior (MAP + Laplace).** Minimise the whitened residuals

       r = [(model(theta) - data) / sigma_data,  (theta - centre) / scale_prior]

   with the model priced at the cost medians (one deterministic sample).
   The Gauss-Newton Hessian ``J^T J`` at the optimum gives the posterior
   covariance; its diagonal is each cost's posterior log-sd.
3. **Classify.** A cost is *moved* when its median shifted by at least
   :data:`MOVED_SHIFT` prior sds, *narrowed* when its posterior sd is at most
   :data:`NARROWED_RATIO` of the prior's; either makes it *constrained*. The
   rest keep their prior spec unchanged.
4. **Profile.** Each constrained cost becomes a ``lognormal`` with the
   posterior sd, narrowed where needed so that its ``low``/``high`` (5th/95th
   percentiles) stay inside the prior range, but never below
   :data:`MIN_WIDTH` of it (a median pushed to a bound stops short of it
   and is flagged *at bound*). The profile also gets the posterior's
   correlations (:func:`posterior_correlations`: the Laplace covariance in log
   space, over the constrained costs and the costs it links to them), applied
   as a Gaussian copula (:func:`model.costs.correlate_uniforms`): the data pin
   down sums of costs (``page_walk + ibpb`` per exit), so independent
   marginals would give a predictive spread far wider than the data warrant.
   Its medians are then refitted
   (same objective, constrained costs only) with the model's own Monte Carlo
   statistics of that very profile as the prediction: ``t_native_mean``,
   ``t_asi_mean`` and ``throughput_loss_p50`` over the common-random-number
   draws ``asi-answer`` will use (same seed, sample count and correlations; the
   streams are keyed by cost, not by profile, so prior and posterior are paired).
   So the profile reproduces the data in the statistics the tools report,
   deterministically.

5. **Identifiability** (:func:`identifiability`). The data Jacobian at the
   MAP, in prior sds, tells how many independent combinations of costs the
   data pin (its singular values above the narrowing threshold). Fewer
   combinations than constrained costs means the fit moved those costs along
   a ridge: a single throughput loss pins only a (weighted) sum of the costs
   an exit pays, and the report says so.

Times and exit counts are compared in log space (``sigma`` relative; an exit
count the model predicts as zero is floored at :data:`ZERO_FLOOR` of the
measurement); losses absolutely. A native run's system CPU time per op bounds
the model's kernel time from above, as a one-sided penalty: the kernel paths
the model prices cannot take longer than the kernel as a whole. An
observation with ``fitted`` false is predicted and reported but has no
residual in the fit (a check of the model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, least_squares
from scipy.special import ndtri

from asi_slowdown.model.costs import (
    COST_NAMES,
    Correlation,
    CostSpec,
    check_correlations,
    correlate_uniforms,
    stream_uniforms,
    to_model_units,
)
from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.mechanism import EXIT_REASONS, EXIT_SOURCES, native_counts
from asi_slowdown.model.params import as_columns

Z95 = float(ndtri(0.95))
"""Standard-normal 95th percentile: ``low``/``high`` of a lognormal spec sit at -/+ this many sds."""

MOVED_SHIFT = 0.1
"""A cost whose log-median moved by at least this many prior sds is reported as moved."""
NARROWED_RATIO = 0.9
"""A cost whose posterior sd is at most this fraction of its prior sd is reported as narrowed."""

MIN_WIDTH = 0.5
"""A calibrated spec keeps at least this fraction of its posterior sd: a median the
data push to a prior bound stops that many sds inside it instead of collapsing
the spec to a point (the report flags it as *at bound*)."""

LINKED_RHO = 0.05
"""An unconstrained cost joins the written correlations when its posterior correlation
with a constrained cost is at least this large: the anchor ties ``page_walk`` and
``ibpb`` to ``page_lookup``, ``copy_bandwidth`` and ``fault_entry`` too, and dropping those
links leaves most of the spread the correlations are there to remove."""
RHO_DIGITS = 3
"""Decimals of a written correlation (the fit uses the rounded values, so the profile
reproduces it exactly); smaller ones are dropped."""

POOR_FIT_Z = 3.0
"""A datum whose residual is larger than this many standard errors (|z| > 3) is one the
calibrated profile does not reproduce: by chance that happens to fewer than 3 data in a
thousand, so it more likely means a wrong tag or unit, a sigma far too small, or a cost
range or mechanism of the model that cannot produce the measurement. ``asi-calibrate``
warns once per such datum and exits 1 (:data:`pipeline.calibrate.run.EXIT_POOR_FIT`)."""

STATISTIC = {
    "native_time": "t_native_mean",
    "asi_time": "t_asi_mean",
    "throughput_loss": "throughput_loss_p50",
    "exits_per_op": "exits_per_op",
    **{f"exits_{s}": f"exits_{s}" for s in EXIT_SOURCES},
    **{f"exit_rate_{r}": f"exit_rate_{r}" for r, sources in EXIT_REASONS.items() if sources},
    # derived (:func:`statistic`): a reason per op, a source per second of ASI time
    **{f"exits_reason_{r}": f"exits_reason_{r}" for r, sources in EXIT_REASONS.items() if sources},
    **{f"exit_rate_source_{s}": f"exit_rate_source_{s}" for s in EXIT_SOURCES},
}
"""The statistic each kind of datum is compared with: an output of
:func:`model.evaluate.evaluate`, or one :func:`statistic` derives from them."""
EXIT_KINDS = frozenset(k for k in STATISTIC if k.startswith("exit"))
"""Exit counts [1/op or 1/s per CPU]."""
RELATIVE_KINDS = frozenset({"native_time", "asi_time", *EXIT_KINDS})
"""Kinds compared in log space (their ``sigma`` is relative)."""
ZERO_FLOOR = 1e-6
"""A predicted exit count below this fraction of the measured one is taken as this
fraction, so a count the model cannot produce gives a large but finite residual."""
PINNED_INFORMATION = 1.0 / 0.9**2 - 1.0
"""A direction in cost space counts as pinned by the data when their information
along it (squared singular value of the data Jacobian in prior sds) is at least
this: enough to narrow it to :data:`NARROWED_RATIO` of the prior sd."""
BLIND_SENSITIVITY = 0.05
"""An observation whose whitened residual moves by less than this per prior sd of
every cost constrains no cost (it only checks the model)."""


def statistic(out: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
    """The statistic of ``kind`` (:data:`STATISTIC`) for every point of an ``evaluate`` output.

    ``exits_reason_<r>`` sums the sources of reason ``r`` (sample means per op);
    ``exit_rate_source_<s>`` is the mean exits of source ``s`` per op over the
    mean ASI time per op [1/s per CPU] (a ratio of means, where ``exit_rate_<r>``
    is a mean of ratios; they differ by the sample spread of ``t_asi`` only).
    """
    name = STATISTIC[kind]
    if name in out:
        return np.asarray(out[name])
    if kind.startswith("exits_reason_"):
        sources = EXIT_REASONS[kind.removeprefix("exits_reason_")]
        return sum(np.asarray(out[f"exits_{s}"]) for s in sources)
    source = kind.removeprefix("exit_rate_source_")
    return np.asarray(out[f"exits_{source}"]) / np.asarray(out["t_asi_mean"]) * 1e9


@dataclass(frozen=True)
class Observation:
    """One datum the calibrated profile should reproduce.

    Attributes
    ----------
    label : str
        What to call it in errors and reports (file name or published label).
    kind : str, a key of :data:`STATISTIC`
        Time per op of one job [ns], ``1 - tput_asi / tput_native`` [0-1], or an
        exit count (``exits_*`` [1/op], ``exit_rate_*`` [1/s per CPU]).
    value : float
        The measurement.
    sigma : float
        Its standard error: relative for times and exit counts, absolute for losses.
    point : mapping
        The model point it was measured at (:data:`model.params.POINT_PARAMS`).
    group : str or None
        The workload whose ``base_time`` is fitted (from native runs), or
        ``None`` to keep ``point["base_time"]``.
    sys_bound : float or None
        Upper bound on the modelled kernel time per op [ns] (native runs).
    fitted : bool
        False: predicted and reported, but left out of the fit.
    """

    label: str
    kind: str
    value: float
    sigma: float
    point: Mapping[str, object]
    group: str | None = None
    sys_bound: float | None = None
    fitted: bool = True


@dataclass(frozen=True)
class LogPrior:
    """A cost's prior as a normal in log space, and its hard bounds (all in log of ``unit``)."""

    center: float
    scale: float
    lower: float
    upper: float

    @classmethod
    def from_spec(cls, spec: CostSpec) -> LogPrior:
        """Centre at the spec's median; ``low``/``high`` at the 5th/95th percentiles."""
        lower, upper = float(np.log(spec.low)), float(np.log(spec.high))
        return cls(float(np.log(spec.median())), (upper - lower) / (2 * Z95), lower, upper)


@dataclass(frozen=True)
class Problem:
    """Everything the fit needs.

    Attributes
    ----------
    observations : sequence of Observation
    priors : mapping of cost name to CostSpec
        The base profile's costs (every name in :data:`model.costs.COST_NAMES`).
    ghz : float
        The profile's clock [GHz], converting cycle costs to ns.
    base_time_bounds : mapping of str to (float, float)
        For each fitted workload: (start, upper bound) of its ``base_time`` [ns].
    sys_sigma : float
        Relative softness of the system-time bound.
    """

    observations: Sequence[Observation]
    priors: Mapping[str, CostSpec]
    ghz: float
    base_time_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    sys_sigma: float = 0.1


@dataclass(frozen=True)
class CostFit:
    """What the data did to one cost. Log quantities are in log of ``unit``."""

    name: str
    prior: LogPrior
    log_median: float
    log_sd: float
    status: str  # "moved", "narrowed", "moved+narrowed" or "prior"
    at_bound: bool
    spec: CostSpec

    @property
    def shift(self) -> float:
        """Median shift in prior sds (signed)."""
        return (self.log_median - self.prior.center) / self.prior.scale

    @property
    def width_ratio(self) -> float:
        """Posterior sd over prior sd."""
        return self.log_sd / self.prior.scale

    @property
    def constrained(self) -> bool:
        return self.status != "prior"

    @property
    def bound(self) -> str | None:
        """The end of the prior range the median stopped at: ``low`` (the data want less),
        ``high`` (the data want more), or None (not at a bound)."""
        if not self.at_bound:
            return None
        return (
            "low"
            if self.log_median - self.prior.lower < self.prior.upper - self.log_median
            else "high"
        )


@dataclass(frozen=True)
class Identifiability:
    """How many independent combinations of the constrained costs the fitted data pin.

    Attributes
    ----------
    measurements : int
        Fitted observations.
    costs : tuple of str
        The constrained costs (moved or narrowed), most sensitive first.
    pinned : int
        Directions in their (log, prior-sd) space the data pin: singular values
        of the data Jacobian with squared value >= :data:`PINNED_INFORMATION`.
    combinations : tuple of tuple of (str, float)
        Per pinned direction, the unit weights of the costs in it (largest first,
        in prior sds of log cost; weights under 0.05 dropped).
    blind : tuple of str
        Labels of fitted observations that no cost moves (they only check the model).
    """

    measurements: int
    costs: tuple[str, ...]
    pinned: int
    combinations: tuple[tuple[tuple[str, float], ...], ...]
    blind: tuple[str, ...] = ()

    @property
    def degenerate(self) -> bool:
        """Fewer pinned combinations than constrained costs: some are pinned only jointly."""
        return len(self.costs) > self.pinned

    def lines(self) -> list[str]:
        """Plain sentences for the console and the report."""
        out = []
        n, k = self.measurements, len(self.costs)
        noun = "measurement" if n == 1 else "measurements"
        names = ", ".join(self.costs)
        if k == 0:
            out.append(f"{n} {noun}: no cost constrained (every cost keeps its prior).")
        elif self.degenerate and self.pinned <= 1:
            verb = "it pins" if n == 1 else "they pin"
            out.append(
                f"{n} {noun} for {k} costs: {verb} only their sum ({names}), "
                f"as {_combination(self.combinations[0]) if self.combinations else 'one combination'}; "
                "each cost alone is not identified: the fit moved them together along that "
                "sum, and the profile's correlations keep it."
            )
        elif self.degenerate:
            out.append(
                f"{n} {noun} for {k} costs ({names}): they pin only {self.pinned} independent "
                f"combinations of them; the other {k - self.pinned} directions are left to the "
                "priors. Pinned: " + "; ".join(_combination(c) for c in self.combinations) + "."
            )
        elif k == 1:
            out.append(f"{n} {noun} for 1 cost ({names}): it is pinned on its own.")
        else:
            out.append(
                f"{n} {noun} for {k} costs ({names}): each is pinned separately "
                f"({self.pinned} independent combinations)."
            )
        if self.blind:
            out.append(
                f"No cost moves {', '.join(self.blind)}: the model predicts it from the "
                "workload and stage alone, so it only checks the model."
            )
        return out


def _combination(weights: Sequence[tuple[str, float]]) -> str:
    terms = [f"{abs(w):.2f} {n}" for n, w in weights]
    signs = ["-" if w < 0 else "+" for _, w in weights]
    if weights and weights[0][1] < 0:
        signs = ["-" if s == "+" else "+" for s in signs]
    text = terms[0] if terms else "nothing"
    for sign, term in zip(signs[1:], terms[1:], strict=True):
        text += f" {sign} {term}"
    return text + " (log costs, in prior sds)"


def identifiability(
    jacobian: np.ndarray, names: Sequence[str], scales: Sequence[float], constrained, labels
) -> Identifiability:
    """What the data pin, from the whitened data Jacobian ``d r_data / d theta`` at the MAP.

    ``jacobian`` has one row per fitted observation and one column per name of
    ``names`` (log costs); ``scales`` are the prior sds, so ``J * scales`` is the
    data's sensitivity per prior sd.
    """
    sensitivity = np.asarray(jacobian, dtype=np.float64) * np.asarray(scales)[None, :]
    blind = tuple(
        label
        for label, row in zip(labels, sensitivity, strict=True)
        if not np.any(np.abs(row) >= BLIND_SENSITIVITY)
    )
    index = [names.index(n) for n in constrained]
    weight = np.linalg.norm(sensitivity[:, index], axis=0) if index else np.zeros(0)
    order = [index[i] for i in np.argsort(-weight, kind="stable")]
    costs = tuple(names[i] for i in order)
    if not order:
        return Identifiability(len(labels), (), 0, (), blind)
    _, singular, vt = np.linalg.svd(sensitivity[:, order], full_matrices=False)
    pinned = int(np.sum(singular**2 >= PINNED_INFORMATION))
    combinations = []
    for v in vt[:pinned]:
        ranked = sorted(zip(costs, v, strict=True), key=lambda cw: -abs(cw[1]))
        combinations.append(tuple((c, float(w)) for c, w in ranked if abs(w) >= 0.05))
    return Identifiability(len(labels), costs, pinned, tuple(combinations), blind)


@dataclass(frozen=True)
class FitResult:
    """The calibrated costs and base times, and how well they reproduce the data."""

    costs: dict[str, CostFit]
    base_times: dict[str, float]
    predictions: np.ndarray
    residuals: np.ndarray
    sys_excess: np.ndarray
    map_predictions: np.ndarray
    success: bool
    message: str
    evaluations: int
    correlations: tuple[Correlation, ...] = ()
    """``(a, b, rho)``: the written profile's correlations (log-space posterior)."""
    identifiability: Identifiability | None = None
    """What combinations of costs the data pin (:func:`identifiability`)."""


# --------------------------------------------------------------------------- pieces
def fitted_names(priors: Mapping[str, CostSpec]) -> list[str]:
    """Costs with a range to fit (not ``fixed``, ``low < high``), in :data:`COST_NAMES` order."""
    return [
        n
        for n in COST_NAMES
        if priors[n].dist != "fixed" and float(priors[n].high) > float(priors[n].low)
    ]


def lognormal_spec(log_median: float, log_sd: float, prior: LogPrior, unit: str) -> CostSpec:
    """A lognormal spec with this median whose 5th/95th percentiles stay in the prior range.

    The sd is narrowed (never the median moved) when a percentile would leave
    ``[low, high]``, so a median near a bound gives a narrow spec.
    """
    room = min(log_median - prior.lower, prior.upper - log_median) / Z95
    sd = max(0.0, min(log_sd, room))
    return CostSpec(
        dist="lognormal",
        low=float(np.exp(log_median - Z95 * sd)),
        high=float(np.exp(log_median + Z95 * sd)),
        unit=unit,
    )


def stack_points(points: Sequence[Mapping[str, object]]) -> dict[str, np.ndarray]:
    """Model columns for a list of points, one row each."""
    cols = [as_columns(p) for p in points]
    return {name: np.concatenate([c[name] for c in cols]) for name in cols[0]}


def fixed_time_without_base(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """Native time per op that no cost prices, less ``base_time`` (device waits) [ns]."""
    fixed = np.broadcast_to(native_counts(cols)["fixed"], cols["base_time"].shape)
    return fixed - cols["base_time"]


def residual(obs: Observation, predicted: float) -> float:
    """Whitened misfit of one observation: log ratio / sigma (times, exit counts) or
    difference / sigma (losses)."""
    if obs.kind in RELATIVE_KINDS:
        floor = ZERO_FLOOR * obs.value if obs.kind in EXIT_KINDS else 1e-300
        return float(np.log(max(predicted, floor) / obs.value) / obs.sigma)
    return float((predicted - obs.value) / obs.sigma)


def data_residuals(problem: Problem, predictions: np.ndarray) -> np.ndarray:
    """Whitened misfit per observation (:func:`residual`)."""
    return np.array(
        [residual(obs, p) for obs, p in zip(problem.observations, predictions, strict=True)],
        dtype=np.float64,
    )


def sys_excess(problem: Problem, kernel: np.ndarray) -> np.ndarray:
    """One-sided, whitened excess of modelled kernel time over measured system time."""
    out = np.zeros(len(problem.observations))
    for i, obs in enumerate(problem.observations):
        if obs.sys_bound and kernel[i] > obs.sys_bound:
            out[i] = np.log(kernel[i] / obs.sys_bound) / problem.sys_sigma
    return out


class Forward:
    """Model predictions for every observation, given cost draws and base times."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.cols = stack_points([o.point for o in problem.observations])
        self.device = fixed_time_without_base(self.cols)
        self.groups = list(problem.base_time_bounds)
        self.group_rows = {
            g: np.array([o.group == g for o in problem.observations]) for g in self.groups
        }
        self.kinds = [o.kind for o in problem.observations]

    def __call__(
        self, costs: Mapping[str, np.ndarray], base_times: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions, kernel_time)``: one value per observation; kernel time [ns/op]."""
        cols = dict(self.cols)
        base = self.cols["base_time"].copy()
        for group, value in zip(self.groups, base_times, strict=True):
            base[self.group_rows[group]] = value
        cols["base_time"] = base
        out = evaluate(cols, costs)
        predictions = np.array(
            [statistic(out, kind)[i] for i, kind in enumerate(self.kinds)], dtype=np.float64
        )
        kernel = out["t_native_mean"] - base - self.device
        return predictions, kernel


def _solve(
    problem: Problem,
    forward: Forward,
    names: Sequence[str],
    priors: Mapping[str, LogPrior],
    make_costs: Callable[[np.ndarray], dict[str, np.ndarray]],
    start: np.ndarray,
    margins: Sequence[float] | None = None,
):
    """Bounded least squares over ``[theta of names..., base times...]``.

    ``margins`` [log units] keep each theta that far inside its prior range.
    """
    n_costs = len(names)
    margins = [0.0] * n_costs if margins is None else list(margins)
    bounds_low = [priors[n].lower + m for n, m in zip(names, margins, strict=True)]
    bounds_low += [0.0] * len(forward.groups)
    bounds_high = [priors[n].upper - m for n, m in zip(names, margins, strict=True)]
    bounds_high += [problem.base_time_bounds[g][1] for g in forward.groups]
    scale = [priors[n].scale for n in names] + [
        max(problem.base_time_bounds[g][1], 1.0) for g in forward.groups
    ]
    centers = np.array([priors[n].center for n in names])
    scales = np.array([priors[n].scale for n in names])
    fitted = np.array([o.fitted for o in problem.observations], dtype=np.float64)

    def residuals(x: np.ndarray) -> np.ndarray:
        predictions, kernel = forward(make_costs(x[:n_costs]), x[n_costs:])
        return np.concatenate(
            [
                fitted * data_residuals(problem, predictions),
                sys_excess(problem, kernel),
                (x[:n_costs] - centers) / scales,
            ]
        )

    start = np.clip(start, bounds_low, bounds_high)
    if start.size == 0:  # nothing left to fit: report the residuals as they stand
        fun = residuals(start)
        return OptimizeResult(
            x=start,
            fun=fun,
            jac=np.zeros((fun.size, 0)),
            success=True,
            nfev=1,
            message="nothing to fit",
        )
    return least_squares(
        residuals,
        start,
        bounds=(bounds_low, bounds_high),
        x_scale=np.array(scale),
        method="trf",
    )


def laplace_covariance(jacobian: np.ndarray) -> np.ndarray:
    """Posterior covariance (inverse Gauss-Newton Hessian of whitened residuals), in log units."""
    return np.linalg.pinv(jacobian.T @ jacobian)


def posterior_correlations(
    covariance: np.ndarray, names: Sequence[str], constrained: Sequence[str]
) -> tuple[Correlation, ...]:
    """The correlations a calibrated profile holds, from the posterior ``covariance`` of ``names``.

    Costs involved: the ``constrained`` ones and every other cost whose
    correlation with one of them is at least :data:`LINKED_RHO` (their
    marginals stay the prior's; only their pairing is written). Values are
    rounded to :data:`RHO_DIGITS` decimals and, should rounding break positive
    definiteness, shrunk towards independence until they are valid.
    """
    if not constrained:
        return ()
    sd = np.sqrt(np.clip(np.diag(covariance), 1e-300, None))
    rho = covariance / np.outer(sd, sd)
    anchors = [names.index(n) for n in constrained]
    involved = [
        i
        for i in range(len(names))
        if i in anchors or any(abs(rho[i, j]) >= LINKED_RHO for j in anchors)
    ]
    for shrink in np.linspace(1.0, 0.0, 21):
        pairs = tuple(
            (names[i], names[j], round(float(shrink * rho[i, j]), RHO_DIGITS))
            for k, i in enumerate(involved)
            for j in involved[k + 1 :]
            if round(float(shrink * rho[i, j]), RHO_DIGITS) != 0
        )
        try:
            check_correlations(pairs)
        except ValueError:
            continue
        return pairs
    return ()


def classify(shift: float, width_ratio: float) -> str:
    """``moved``, ``narrowed``, ``moved+narrowed`` or ``prior`` (see the module notes)."""
    moved = abs(shift) >= MOVED_SHIFT
    narrowed = width_ratio <= NARROWED_RATIO
    if moved and narrowed:
        return "moved+narrowed"
    return "moved" if moved else "narrowed" if narrowed else "prior"


# --------------------------------------------------------------------------- fit
def fit(problem: Problem, *, samples: int, seed: int, forward: Forward | None = None) -> FitResult:
    """Calibrate ``problem``'s costs and base times (the module notes give the method).

    Parameters
    ----------
    problem : Problem
    samples, seed : int, int
        The Monte Carlo draws the written profile will get (common random numbers).
    forward : Forward, optional
        What predicts each observation from cost draws: by default one model point per
        observation (:class:`Forward`); :mod:`pipeline.validate` passes one that runs each
        published benchmark as it was run (several phases, an uncertain CPU count).

    Returns
    -------
    FitResult
    """
    specs = problem.priors
    names = fitted_names(specs)
    priors = {n: LogPrior.from_spec(specs[n]) for n in names}
    forward = Forward(problem) if forward is None else forward
    ghz = problem.ghz
    medians = {n: float(specs[n].median()) for n in COST_NAMES}
    base_start = [problem.base_time_bounds[g][0] for g in forward.groups]

    # 2. MAP with the model priced at the cost medians, then Laplace.
    def plug_in(theta: np.ndarray) -> dict[str, np.ndarray]:
        values = dict(medians)
        values.update({n: float(np.exp(t)) for n, t in zip(names, theta, strict=True)})
        return {n: to_model_units(np.array([values[n]]), specs[n].unit, ghz) for n in COST_NAMES}

    start = np.array([priors[n].center for n in names] + base_start)
    first = _solve(problem, forward, names, priors, plug_in, start)
    covariance = laplace_covariance(first.jac)[: len(names), : len(names)]
    sds = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    map_predictions, _ = forward(plug_in(first.x[: len(names)]), first.x[len(names) :])

    # 3. Classify.
    fits: dict[str, CostFit] = {}
    for i, n in enumerate(names):
        shift = (first.x[i] - priors[n].center) / priors[n].scale
        status = classify(shift, sds[i] / priors[n].scale)
        fits[n] = CostFit(
            n, priors[n], first.x[i], min(sds[i], priors[n].scale), status, False, specs[n]
        )

    # 4. Refit the constrained medians against the profile's own Monte Carlo statistics.
    free = [n for n in names if fits[n].constrained]
    rows = [i for i, o in enumerate(problem.observations) if o.fitted]
    ident = identifiability(
        np.asarray(first.jac)[rows][:, : len(names)],
        names,
        [priors[n].scale for n in names],
        free,
        [problem.observations[i].label for i in rows],
    )
    correlations = posterior_correlations(covariance, names, free)
    uniforms = correlate_uniforms(
        {n: stream_uniforms(samples, seed=seed, cost=n) for n in COST_NAMES},
        correlations,
    )

    def profile_specs(theta: np.ndarray) -> dict[str, CostSpec]:
        out = dict(specs)
        for n, t in zip(free, theta, strict=True):
            out[n] = lognormal_spec(t, fits[n].log_sd, priors[n], specs[n].unit)
        return out

    def monte_carlo(theta: np.ndarray) -> dict[str, np.ndarray]:
        chosen = profile_specs(theta)
        return {
            n: to_model_units(chosen[n].ppf(uniforms[n]), chosen[n].unit, ghz) for n in COST_NAMES
        }

    start = np.concatenate([[first.x[names.index(n)] for n in free], first.x[len(names) :]])
    margins = [Z95 * MIN_WIDTH * fits[n].log_sd for n in free]
    second = _solve(problem, forward, free, priors, monte_carlo, start, margins)
    theta, base_times = second.x[: len(free)], second.x[len(free) :]
    final_specs = profile_specs(theta)
    for n, t, margin in zip(free, theta, margins, strict=True):
        old = fits[n]
        room = min(t - priors[n].lower, priors[n].upper - t) - margin
        at_bound = bool(room < 1e-6 * priors[n].scale)
        fits[n] = CostFit(n, old.prior, float(t), old.log_sd, old.status, at_bound, final_specs[n])
    for n in names:
        if not fits[n].constrained:  # reported at the prior: median and width unchanged
            fits[n] = CostFit(
                n, priors[n], priors[n].center, priors[n].scale, "prior", False, specs[n]
            )

    predictions, kernel = forward(monte_carlo(theta), base_times)
    return FitResult(
        costs=fits,
        base_times=dict(zip(forward.groups, (float(b) for b in base_times), strict=True)),
        predictions=predictions,
        residuals=data_residuals(problem, predictions),
        sys_excess=sys_excess(problem, kernel),
        map_predictions=map_predictions,
        success=bool(first.success and second.success),
        message=str(second.message),
        evaluations=int(first.nfev + second.nfev),
        correlations=correlations,
        identifiability=ident,
    )
