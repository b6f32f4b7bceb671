"""Calibration: measurements in, a fitted CPU profile and workloads out, composed back and checked.

:func:`run` is what ``asi-calibrate`` does (:mod:`pipeline.cli.calibrate`
documents the options and outputs); the fit is :mod:`pipeline.calibrate.fit`,
the inputs :mod:`pipeline.calibrate.measurements` and :mod:`pipeline.calibrate.fio`,
the report :mod:`pipeline.calibrate.report`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.costs import COST_NAMES, CostSpec
from asi_slowdown.model.evaluate import CONFIDENCE, evaluate
from asi_slowdown.model.mechanism import blocks_per_io, hit_ratio
from asi_slowdown.model.params import CPU_FLAGS
from asi_slowdown.model.units import format_size, parse_size
from asi_slowdown.pipeline.calibrate.fio import FioRun
from asi_slowdown.pipeline.calibrate.fit import (
    POOR_FIT_Z,
    RELATIVE_KINDS,
    FitResult,
    Observation,
    Problem,
    fit,
    statistic,
)
from asi_slowdown.pipeline.calibrate.measurements import LOSS, Inputs, Tags, load_inputs
from asi_slowdown.pipeline.calibrate.report import display_path, render_report
from asi_slowdown.pipeline.configuration.checks import check_calibrate, check_calibrated_name
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, Composer, user_config_dir
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.errors import EXIT_FAILED, ConfigError
from asi_slowdown.pipeline.configuration.profile import ModelProfile, model_profile
from asi_slowdown.pipeline.configuration.schema import SIZE_FIELDS
from asi_slowdown.pipeline.store.schema import LOSS_QUANTILES

Compose = Callable[[Sequence[str]], tuple[DictConfig, ModelProfile]]
"""A datum's overrides composed on the command line's (:meth:`Composer.variant`): the
config and its model inputs."""


@dataclass(frozen=True)
class Datum:
    """An observation plus how to compose its point and what it came from."""

    observation: Observation
    input: str
    workload: str
    overrides: tuple[str, ...]
    """Compose overrides for the point, on the base profile and base workload."""
    kept_overrides: tuple[str, ...]
    """The part of ``overrides`` that still applies on the calibrated workload."""
    tags: Tags
    run: FioRun | None = None
    where: str = ""
    """The file and row it was read from (``manifest.yaml: run 2``)."""


@dataclass(frozen=True)
class NativeRates:
    """A workload's event rates measured by its native (``asi=off``) runs, averaged."""

    workload: str
    runs: int
    time_per_op: float
    max_time_per_op: float
    usr_per_op: float
    sys_per_op: float
    ctx_per_op: float
    majf_per_op: float
    minf_per_op: float
    shape: tuple[str, ...] = field(default=())
    """``workload.io_size=...`` etc.: the fio job's shape, as overrides."""
    rates: tuple[str, ...] = field(default=())
    """``workload.ctxsw_per_op=...`` etc.: the derived event rates, as overrides."""
    files: tuple[str, ...] = field(default=())
    """The fio JSON files of these runs (and of no other)."""


# --------------------------------------------------------------------------- overrides
def _value(x: float | int | bool) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return repr(float(x)) if isinstance(x, float) else str(x)


# --------------------------------------------------------------------------- native rates
def fio_shape(run: FioRun) -> tuple[str, ...]:
    """Workload overrides for what the fio job itself says: block size, file size, pattern."""
    out = []
    if run.block_size:
        out.append(f"workload.io_size={run.block_size}")
    if run.file_size:
        out.append(f"workload.file_size={run.file_size}")
    if run.sequential is not None:
        out.append(f"workload.sequential={_value(run.sequential)}")
    return tuple(out)


def switches_not_from_misses(ctx_per_op: float, point: dict) -> float:
    """Context switches per op that page-cache misses do not explain [1/op].

    fio counts each switch-out once (``getrusage``); a blocking miss is one.
    """
    hits = hit_ratio(point["file_size"], point["page_cache_size"], point["sequential"])
    blocks = blocks_per_io(point["io_size"], point["readahead"], point["sequential"], hits)
    return max(0.0, ctx_per_op - point["io_per_op"] * float(blocks))


def compose_for(
    composer: Compose, overrides: Sequence[str], where: str
) -> tuple[DictConfig, ModelProfile]:
    """``composer(overrides)``, a failure prefixed with the input row it is for.

    The command line's own overrides composed already, so a failure here is the
    row's: an unknown ``stage`` or ``workload``, a bad ``overrides`` entry, a
    fio job shape out of the model's range.
    """
    try:
        return composer(overrides)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def native_rates(
    workload: str, runs: Sequence[FioRun], composer: Compose, where: str = ""
) -> NativeRates:
    """Average the native runs of one workload and derive its event rates."""
    shapes = {fio_shape(r) for r in runs}
    if len(shapes) > 1:
        raise ConfigError(
            f"native runs of {workload} differ in fio bs/size/rw ({', '.join(r.path for r in runs)}); "
            "calibrate them separately"
        )
    shape = shapes.pop()

    def mean(attr: str) -> float:
        return float(np.mean([getattr(r, attr) for r in runs]))

    point = compose_for(composer, (f"workload={workload}", *shape), where or workload)[1].point
    ctxsw = switches_not_from_misses(mean("ctx_per_op"), point)
    # Every minor fault is taken as a zero-fill fault: fio allocates its
    # buffers once, so the few it takes are first touches of fresh pages.
    zero_fill = mean("minf_per_op")
    return NativeRates(
        workload=workload,
        runs=len(runs),
        time_per_op=mean("time_per_op"),
        max_time_per_op=max(r.time_per_op for r in runs),
        usr_per_op=mean("usr_per_op"),
        sys_per_op=mean("sys_per_op"),
        ctx_per_op=mean("ctx_per_op"),
        majf_per_op=mean("majf_per_op"),
        minf_per_op=zero_fill,
        shape=shape,
        files=tuple(r.path for r in runs),
        rates=(
            f"workload.ctxsw_per_op={_round(ctxsw)!r}",
            f"workload.zero_fill_per_op={_round(zero_fill)!r}",
        ),
    )


# --------------------------------------------------------------------------- data
def _tag_overrides(tags: Tags, workload: str, cpus: int) -> list[str]:
    out = [f"workload={workload}", f"cpus={cpus}"]
    if tags.asi:
        out.append(f"mitigations={tags.stage}")
    if tags.ibpb is not None:
        out.append(f"cpu.ibpb={_value(tags.ibpb)}")
    return out


PRESET_TAGS = {"stage": "mitigations", "workload": "workload"}
"""Tags that name a preset, and the config group it must be in."""


def check_presets(inputs: Inputs, hydra: Composer) -> None:
    """Every ``stage`` and ``workload`` an input names is a preset of its config group;
    else one line naming the file, the row and the field (before anything is fitted)."""
    options = {group: hydra.group_options(group) for group in PRESET_TAGS.values()}
    for item in (*inputs.runs, *inputs.published):
        for tag, group in PRESET_TAGS.items():
            value = getattr(item.tags, tag)
            if value is not None and value not in options[group]:
                raise ConfigError(
                    f"{item.where or item.label}: {tag}: unknown {group} preset {value!r}; "
                    f"allowed: {', '.join(options[group])}"
                )


def check_profiles(inputs: Inputs, base: str) -> None:
    """All inputs must be on the base profile: one calibration, one machine."""
    tagged = [(r.where or r.label, r.tags.profile) for r in inputs.runs] + [
        (p.where or p.label, p.tags.profile) for p in inputs.published
    ]
    for label, profile in tagged:
        if profile is not None and profile != base:
            raise ConfigError(
                f"{label}: profile {profile!r} differs from the base profile {base!r}; "
                f"calibrate one CPU profile at a time (pass cpu={profile})"
            )


def system_time_bound(run: FioRun) -> float | None:
    """Upper bound on the modelled kernel time per op [ns]: fio's system share of the wall time.

    fio's CPU accounting can miss time (on this kind of VM usr + sys is 60-85 %
    of the wall time of a busy job), so the system *share* of what it did
    account is applied to the wall time per op.
    """
    cpu = run.usr_per_op + run.sys_per_op
    return run.sys_per_op / cpu * run.time_per_op if cpu > 0 else None


def point_overrides(tags: Tags, workload: str, cpus: int, native: NativeRates | None, kept):
    """Compose overrides for a datum's point on the base profile and base workload."""
    return (*_tag_overrides(tags, workload, cpus), *(native.rates if native else ()), *kept)


def vm_exit_overrides(inputs: Inputs, default_workload: str) -> dict[str, tuple[str, ...]]:
    """Per workload, the ``workload.vmexits_<reason>_per_s`` overrides its ``perf kvm stat``
    report gives (:mod:`pipeline.calibrate.kvmstat`); one report per workload."""
    out: dict[str, tuple[str, ...]] = {}
    for v in inputs.vm_exits:
        workload = v.workload or default_workload
        if workload in out:
            raise ConfigError(
                f"{v.stat.path}: a second perf kvm stat report for workload {workload}; "
                "give one report per workload (record the run once, longer)"
            )
        out[workload] = v.stat.overrides()
    return out


def build_data(
    inputs: Inputs, cfg: DictConfig, composer: Compose
) -> tuple[list[Datum], dict[str, NativeRates]]:
    """Observations for every input, and the native rates of each natively measured workload.

    The event rates measured natively apply to every datum of that workload
    (its ASI runs and published points too), and its ``base_time`` is fitted.
    """
    options = cfg.calibrate
    default_workload = cfg.workload.name
    by_workload: dict[str, list[FioRun]] = {}
    first_row: dict[str, str] = {}
    for r in inputs.runs:
        if not r.tags.asi:
            by_workload.setdefault(r.tags.workload or default_workload, []).append(r.run)
            first_row.setdefault(r.tags.workload or default_workload, r.where or r.run.path)
    rates = {w: native_rates(w, runs, composer, first_row[w]) for w, runs in by_workload.items()}
    vm_exits = vm_exit_overrides(inputs, default_workload)

    data = []
    for r in inputs.runs:
        workload = r.tags.workload or default_workload
        kept = (*vm_exits.get(workload, ()), *fio_shape(r.run), *r.tags.overrides)
        cpus = r.tags.cpus or r.run.jobs
        overrides = point_overrides(r.tags, workload, cpus, rates.get(workload), kept)
        observation = Observation(
            label=r.label,
            kind="asi_time" if r.tags.asi else "native_time",
            value=r.run.time_per_op,
            sigma=options.time_sigma,
            point=compose_for(composer, overrides, r.where or r.run.path)[1].point,
            group=workload if workload in rates else None,
            sys_bound=None if r.tags.asi else system_time_bound(r.run),
        )
        data.append(
            Datum(observation, r.run.path, workload, overrides, kept, r.tags, r.run, r.where)
        )
    for p in inputs.published:
        workload = p.tags.workload or default_workload
        kept = (*vm_exits.get(workload, ()), *p.tags.overrides)
        overrides = point_overrides(p.tags, workload, p.tags.cpus, rates.get(workload), kept)
        default_sigma = options.loss_sigma if p.quantity == LOSS else options.exit_sigma
        observation = Observation(
            label=p.label,
            kind=p.quantity,
            value=p.value,
            sigma=p.sigma or default_sigma,
            point=compose_for(composer, overrides, p.where or p.label)[1].point,
            group=workload if workload in rates else None,
            fitted=p.fit,
        )
        data.append(
            Datum(
                observation, p.source or p.label, workload, overrides, kept, p.tags, None, p.where
            )
        )
    return data, rates


# --------------------------------------------------------------------------- outputs
def _round(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def spec_dict(spec: CostSpec, source: str) -> dict:
    """A cost as the YAML mapping ``conf/cpu`` files use."""
    out = {"dist": spec.dist}
    if spec.dist == "fixed":
        out["value"] = _round(spec.value)
    else:
        out.update(low=_round(spec.low), high=_round(spec.high))
    out.update(unit=spec.unit, source=source)
    return out


def calibrated_source(fitted, prior_source: str, n_inputs: int) -> str:
    """The ``source`` note of a calibrated cost."""
    if not fitted.constrained:
        return prior_source
    return (
        f"asi-calibrate: {fitted.status} by {n_inputs} input(s) (posterior 5th-95th percentiles; "
        f"see provenance); prior: {prior_source}"
    )


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def profile_document(cfg, name, result, data, inputs, rates, report_path) -> dict:
    """The calibrated profile as a plain mapping (validates against ``CpuConf``)."""
    base_costs = OmegaConf.to_container(cfg.cpu.costs, resolve=True)
    priors = model_profile(cfg).cost_specs
    costs = {}
    for cost in COST_NAMES:
        fitted = result.costs.get(cost)
        spec = fitted.spec if fitted else priors[cost]
        source = base_costs[cost]["source"]
        costs[cost] = spec_dict(
            spec, calibrated_source(fitted, source, len(data)) if fitted else source
        )
    provenance = {
        "tool": "asi-calibrate",
        "model_version": MODEL_VERSION,
        "date": now_utc(),
        "base_profile": cfg.cpu.name,
        "seed": int(cfg.seed),
        "samples": int(cfg.samples),
        "measurements": cfg.measurements,
        "inputs": [
            {"path": display_path(f.path), "sha256": f.sha256, "kind": f.kind} for f in inputs.files
        ],
        "workloads": {w: f"{w}_{name}" for w in rates},
        "base_time_ns": {f"{w}_{name}": _round(b) for w, b in result.base_times.items()},
        "residuals": [
            {
                "input": d.observation.label,
                "quantity": d.observation.kind,
                "measured": _round(d.observation.value),
                "predicted": _round(float(p)),
                "z": _round(float(z), 3),
                **({} if d.observation.fitted else {"fitted": False}),
            }
            for d, p, z in zip(data, result.predictions, result.residuals, strict=True)
        ],
        "costs": {
            n: {
                "status": c.status,
                "shift_prior_sd": _round(c.shift, 3),
                "width_ratio": _round(c.width_ratio, 3),
                "at_bound": c.bound or False,  # low | high: the end the data push it to
            }
            for n, c in result.costs.items()
            if c.constrained
        },
        "kept_at_prior": [n for n, c in result.costs.items() if not c.constrained],
        "identifiability": result.identifiability.lines() if result.identifiability else [],
        "correlations": (
            "posterior correlations of the log costs (Laplace), over the constrained costs and "
            "those it links to them; a Gaussian copula in cpu.correlations"
            if result.correlations
            else "none"
        ),
        "fit": {"converged": result.success, "evaluations": result.evaluations},
        "report": str(report_path),
    }
    return {
        "name": name,
        "description": f"{cfg.cpu.name} calibrated by asi-calibrate on {len(data)} input(s)",
        "ghz": float(cfg.cpu.ghz),
        # every flag of the base profile (model.params.CPU_FLAGS): flushes, default mitigations
        **{flag: bool(cfg.cpu[flag]) for flag in CPU_FLAGS},
        "costs": costs,
        "correlations": [{"a": a, "b": b, "rho": rho} for a, b, rho in result.correlations],
        "provenance": provenance,
    }


def workload_document(name: str, rates: NativeRates, base_time: float, composer: Compose) -> dict:
    """A calibrated workload: the base one with the measured shape and rates and the fitted base_time."""
    composed, _ = composer((f"workload={rates.workload}", *rates.shape, *rates.rates))
    doc = OmegaConf.to_container(composed.workload, resolve=True)
    doc["name"] = f"{rates.workload}_{name}"
    doc["description"] = f"{rates.workload} as measured natively on the {name} machine"
    doc["base_time"] = _round(base_time)
    for key in SIZE_FIELDS:
        doc[key] = format_size(parse_size(doc[key], f"workload.{key}"))
    return doc


def write_yaml(path: Path, doc: dict, header: str) -> None:
    """Write ``doc`` under a comment ``header``; leaf mappings and lists in flow style."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(doc, header), encoding="utf-8")


def _dump(doc: dict, header: str) -> str:
    class Flow(yaml.SafeDumper):
        pass

    def leaf_mappings_in_flow(dumper, data):
        flow = data is not doc and not any(isinstance(v, dict | list) for v in data.values())
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)

    def scalar_lists_in_flow(dumper, data):
        flow = not any(isinstance(v, dict | list) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Flow.add_representer(dict, leaf_mappings_in_flow)
    Flow.add_representer(list, scalar_lists_in_flow)
    body = yaml.dump(doc, Dumper=Flow, sort_keys=False, width=110, allow_unicode=True)
    return header + body


def workload_header(rates: NativeRates, name: str) -> str:
    """The comment atop a calibrated workload: when, from which of the native runs, how to use it."""
    files = ", ".join(Path(path).name for path in rates.files)
    return (
        f"# Written by asi-calibrate on {now_utc()}: {rates.workload} as measured natively\n"
        f"# ({rates.runs} run(s): {files}); base_time fitted with cpu={name}.\n"
        f"# Provenance (input sha256, residuals): conf/cpu/{name}.yaml. Use both together:\n"
        f"#   asi-answer cpu={name} workload={rates.workload}_{name}\n"
    )


# --------------------------------------------------------------------------- verification
VERIFIED_KEYS = ("t_native_mean", "t_asi_mean", *LOSS_QUANTILES)


def written_search_path(conf_dir: Path, hydra: Composer) -> list[str]:
    """The override that finds what asi-calibrate wrote in ``conf_dir``, unless it is already
    searched (then none)."""
    on_path = [Path(d).resolve() for d in (*hydra.config_dirs, user_config_dir())]
    if conf_dir.resolve() in on_path:
        return []
    return [f"hydra.searchpath=[file://{conf_dir.resolve()}]"]


def on_written(
    name: str, conf_dir: Path, base_overrides: Sequence[str], hydra: Composer
) -> Compose:
    """Compose on the written profile (``cpu=<name>``) as a user would: from ``conf_dir``."""
    search = written_search_path(conf_dir, hydra)
    return partial(hydra.variant, [*search, *base_overrides, f"cpu={name}"])


def verify(
    data: Sequence[Datum], name: str, rates, conf_dir: Path, base_overrides, hydra: Composer
) -> list[dict]:
    """Compose the written profile (and workloads) as a user would, and evaluate each datum.

    Returns, per datum, the :data:`VERIFIED_KEYS` of :func:`model.evaluate.evaluate`,
    ``predicted`` (the datum's own statistic, :func:`pipeline.fit.statistic`),
    and, when the profile has correlations, the throughput loss p05/p95 with them
    dropped (``..._independent``): how much the correlations narrow the spread.
    """
    composer = on_written(name, conf_dir, base_overrides, hydra)
    out = []
    for d in data:
        workload = f"{d.workload}_{name}" if d.workload in rates else d.workload
        cpus = int(d.observation.point["cpus"])
        cfg, model = composer([*_tag_overrides(d.tags, workload, cpus), *d.kept_overrides])
        result = evaluate(model.point, model.costs())
        row = {key: float(result[key][0]) for key in VERIFIED_KEYS}
        row["predicted"] = float(statistic(result, d.observation.kind)[0])
        if model.correlations:
            independent = evaluate(model.point, replace(model, correlations=()).costs())
            for key in ("throughput_loss_p05", "throughput_loss_p95"):
                row[f"{key}_independent"] = float(independent[key][0])
        out.append(row)
    return out


# --------------------------------------------------------------------------- run
EXIT_POOR_FIT = EXIT_FAILED
"""``asi-calibrate``'s exit code when everything was written but some *fitted* datum's
residual exceeds :data:`pipeline.calibrate.fit.POOR_FIT_Z` (the fit does not reproduce its
own input). A check (``fit: false``) that far off is warned about too, but exits 0: it
was declared as a test of the model, not an input of the fit."""


def poor_fits(data: Sequence[Datum], result: FitResult) -> list[str]:
    """One line per datum the calibrated profile misses by more than |z| > POOR_FIT_Z
    (:data:`pipeline.calibrate.fit.POOR_FIT_Z`), fitted or a check (``fit: false``)."""
    out = []
    for d, predicted, z in zip(data, result.predictions, result.residuals, strict=True):
        if abs(z) > POOR_FIT_Z:
            obs = d.observation
            role = "" if obs.fitted else ", a check (fit: false)"
            out.append(
                f"{obs.label} ({d.where or d.input}{role}): {obs.kind} measured {obs.value:.4g}, the "
                f"calibrated profile gives {float(predicted):.4g}, residual z {float(z):+.1f} "
                f"(|z| > {POOR_FIT_Z:g}: not reproduced; check its tags, unit and sigma)"
            )
    return out


@dataclass(frozen=True)
class Outcome:
    """What one calibration wrote, and the numbers behind it."""

    profile_path: Path
    workload_paths: dict[str, Path]
    report_path: Path
    report: str
    result: FitResult
    verified: list[dict]
    """Per datum, :data:`VERIFIED_KEYS` of the written profile composed back."""
    warnings: list[str] = field(default_factory=list)
    """One line per datum with |z| > :data:`pipeline.calibrate.fit.POOR_FIT_Z` (:func:`poor_fits`)."""
    poor_fit: bool = False
    """Some fitted datum is among :attr:`warnings`: ``asi-calibrate`` exits :data:`EXIT_POOR_FIT`."""


def problem_for(data: Sequence[Datum], rates, cfg: DictConfig) -> Problem:
    """The fit problem: priors from the base profile, base_time free per native workload."""
    # base_time [ns] lies between 0 and the slowest native time per op of its workload.
    bounds = {w: (r.time_per_op / 2, r.max_time_per_op) for w, r in rates.items()}
    return Problem(
        observations=[d.observation for d in data],
        priors=model_profile(cfg).cost_specs,
        ghz=float(cfg.cpu.ghz),
        base_time_bounds=bounds,
        sys_sigma=cfg.calibrate.sys_sigma,
    )


def confidence_before_after(
    data: Sequence[Datum], name: str, rates, conf_dir: Path, base_overrides, hydra: Composer
) -> list[dict]:
    """P(meets the 1 % target) and P(under 5 %) at the roadmap's last stage, for every
    measured workload, under the base profile's priors and under the written profile.

    What the calibration did to the answer's confidence: the probabilities are
    shares of paired cost samples (:data:`model.evaluate.CONFIDENCE`), so they move
    exactly as far as the data moved and narrowed the costs.
    """
    before = partial(hydra.variant, list(base_overrides))
    after = on_written(name, conf_dir, base_overrides, hydra)
    stage = str(before([])[0].roadmap.stages[-1])
    rows = []
    for workload in dict.fromkeys(d.workload for d in data):
        row = {"workload": workload, "stage": stage}
        calibrated = f"{workload}_{name}" if workload in rates else workload
        for label, composer, w in (("prior", before, workload), ("calibrated", after, calibrated)):
            _, model = composer([f"workload={w}", f"mitigations={stage}"])
            result = evaluate(model.point, model.costs())
            for key in CONFIDENCE:
                row[f"{key}_{label}"] = float(result[key][0])
        rows.append(row)
    return rows


def prior_predictions(data: Sequence[Datum], composer: Compose) -> list[float]:
    """Each datum's statistic under the base profile: where calibration started."""
    out = []
    for d in data:
        _, model = composer(d.overrides)
        result = evaluate(model.point, model.costs())
        out.append(float(statistic(result, d.observation.kind)[0]))
    return out


def mismatches(data: Sequence[Datum], result: FitResult, verified) -> list[str]:
    """Data whose composed-profile prediction differs from the fit's (rounding in the YAML only)."""
    out = []
    for d, fitted, v in zip(data, result.predictions, verified, strict=True):
        composed = v["predicted"]
        scale = abs(fitted) if d.observation.kind in RELATIVE_KINDS else 1.0
        if abs(composed - fitted) > 1e-3 * scale:
            out.append(f"{d.observation.label} (fit {fitted:.6g}, profile {composed:.6g})")
    return out


def run(argv: Sequence[str], hydra: Composer | None = None) -> Outcome:
    """Calibrate from command-line overrides (``measurements=``, ``calibrate.*`` and the
    project's); return what was written.

    The profile and workloads go to ``calibrate.conf_dir`` (default: the
    user's config directory, :func:`pipeline.configuration.compose.user_config_dir`),
    never into the installed package.
    """
    hydra = hydra or default_composer()
    cfg = hydra.compose(argv)
    name = check_calibrate(cfg)
    options = cfg.calibrate
    base = cfg.cpu.name
    inputs = load_inputs(cfg.measurements, CONF_DIR)
    check_profiles(inputs, base)
    check_presets(inputs, hydra)
    composer = partial(hydra.variant, list(argv))
    data, rates = build_data(inputs, cfg, composer)
    if not data:
        extra = (
            " (perf kvm stat reports only set VM-exit rates: add the runs or published points "
            "of their workload)"
            if inputs.vm_exits
            else ""
        )
        raise ConfigError(
            f"measurements: {cfg.measurements} holds no runs or published points{extra}"
        )

    conf_dir = Path(options.conf_dir) if options.conf_dir else user_config_dir()
    profile_path = conf_dir / "cpu" / f"{name}.yaml"
    workload_paths = {w: conf_dir / "workload" / f"{w}_{name}.yaml" for w in rates}
    report_path = Path(options.report_dir) / name / "report.md"
    for path in (profile_path, *workload_paths.values()):
        check_calibrated_name(path)

    result = fit(
        problem_for(data, rates, cfg),
        samples=int(cfg.samples),
        seed=int(cfg.seed),
    )

    doc = profile_document(cfg, name, result, data, inputs, rates, report_path)
    usage = f"#   asi-answer cpu={name}" + "".join(f" workload={w}_{name}" for w in rates)
    write_yaml(
        profile_path,
        doc,
        f"# Calibrated CPU profile written by asi-calibrate from base profile {base}.\n"
        f"# Fit report: {report_path}. Costs the data did not constrain keep their prior spec.\n"
        f"{usage}\n",
    )
    for w, path in workload_paths.items():
        wdoc = workload_document(name, rates[w], result.base_times[w], composer)
        write_yaml(path, wdoc, workload_header(rates[w], name))

    verified = verify(data, name, rates, conf_dir, argv, hydra)
    report = render_report(
        name=name,
        cfg=cfg,
        data=data,
        rates=rates,
        result=result,
        verified=verified,
        inputs=inputs,
        profile_path=profile_path,
        workload_paths=workload_paths,
        prior=prior_predictions(data, composer),
        mismatches=mismatches(data, result, verified),
        confidence=confidence_before_after(data, name, rates, conf_dir, argv, hydra),
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report, encoding="utf-8")
    residuals = zip(data, result.residuals, strict=True)
    poor = [abs(z) > POOR_FIT_Z and d.observation.fitted for d, z in residuals]
    return Outcome(
        profile_path,
        workload_paths,
        report_path,
        report,
        result,
        verified,
        poor_fits(data, result),
        any(poor),
    )
