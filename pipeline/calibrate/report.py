"""The Markdown fit report of ``asi-calibrate``.

Sections: what went in (files and hashes), the native event rates measured
per workload, measured vs predicted per input with residuals (throughput
losses, times, exit counts; IBPB on/off pairs also as a difference), what
combinations of costs the data pin (identifiability), per cost
whether the data moved or narrowed it or left it at its prior, and the
correlations written with the costs (and how much they narrow the predictive
spread at published points). Predictions
are those of the written profile composed back through the config path, so
they are what ``asi-answer cpu=<name>`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.params import VM_EXIT_REASONS
from asi_slowdown.pipeline.calibrate.fit import RELATIVE_KINDS, Z95, CostFit, FitResult, residual
from asi_slowdown.pipeline.configuration.compose import CONF_DIR

QUANTITY = {
    "native_time": "native time per op [ns]",
    "asi_time": "ASI time per op [ns]",
    "throughput_loss": "throughput loss",
    "exits_per_op": "exits per op",
}


def quantity_text(kind: str) -> str:
    """What a datum of ``kind`` measures, with its unit."""
    if kind in QUANTITY:
        return QUANTITY[kind]
    for prefix, text in (
        ("exit_rate_source_", "{} exits per s per CPU"),
        ("exits_reason_", "{} exits (reason) per op"),
        ("exit_rate_", "{} exits (reason) per s per CPU"),
        ("exits_", "{} exits per op"),
    ):
        if kind.startswith(prefix):
            return text.format(kind.removeprefix(prefix))
    return kind


def display_path(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it, else absolute."""
    resolved = Path(path).resolve()
    root = CONF_DIR.parent.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, columns padded so it also reads as plain text."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _g(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


def _spread(spec_low: float, spec_high: float, median: float) -> str:
    return f"{_g(median)} [{_g(spec_low)}-{_g(spec_high)}]"


def _prior_text(fit: CostFit) -> str:
    p = fit.prior
    return _spread(np.exp(p.lower), np.exp(p.upper), np.exp(p.center))


def _posterior_text(fit: CostFit) -> str:
    if not fit.constrained:
        return "= prior"
    low = np.exp(fit.log_median - Z95 * fit.log_sd)
    high = np.exp(fit.log_median + Z95 * fit.log_sd)
    written = f"{_g(fit.spec.low)}-{_g(fit.spec.high)}"
    text = _spread(low, high, np.exp(fit.log_median))
    posterior = f"{_g(low)}-{_g(high)}"
    return text if written == posterior else f"{text}, written {written}"


def _tags(datum) -> str:
    tags = datum.tags
    parts = [datum.workload, f"{int(datum.observation.point['cpus'])} cpu"]
    parts.append(f"asi {tags.stage}" if tags.asi else "asi off")
    if tags.ibpb is not None:
        parts.append(f"ibpb {'on' if tags.ibpb else 'off'}")
    if datum.kept_overrides and datum.run is None:
        parts.append(" ".join(datum.kept_overrides))
    if not datum.observation.fitted:
        parts.append("check only (fit: false)")
    return ", ".join(parts)


def fit_rows(data, verified, prior: Sequence[float]) -> list[list[str]]:
    """Measured vs predicted, one row per datum (plus IOPS rows for native runs).

    ``prior`` is the base profile's prediction (with the calibrated workloads'
    event rates but the configured ``base_time``): what calibration started from.
    """
    rows = []
    for d, v, before in zip(data, verified, prior, strict=True):
        obs = d.observation
        predicted = v["predicted"]
        if obs.kind in RELATIVE_KINDS:
            error = _pct(predicted / obs.value - 1)
        else:
            error = f"{predicted - obs.value:+.3f}"
        z = residual(obs, predicted)
        rows.append(
            [
                obs.label,
                _tags(d),
                quantity_text(obs.kind),
                _g(obs.value),
                _g(before),
                _g(predicted),
                error,
                f"{z:+.2f}",
            ]
        )
        if obs.kind == "native_time":
            cpus = obs.point["cpus"]
            measured, model = cpus * 1e9 / obs.value, cpus * 1e9 / predicted
            rows.append(
                [
                    obs.label,
                    _tags(d),
                    "native IOPS (all jobs)",
                    f"{measured:.0f}",
                    f"{cpus * 1e9 / before:.0f}",
                    f"{model:.0f}",
                    _pct(model / measured - 1),
                    "",
                ]
            )
    return rows


def paired_loss_rows(data, verified) -> list[list[str]]:
    """Throughput loss of each fio ASI run against the native runs of the same workload and CPUs."""
    native: dict[tuple, list[float]] = {}
    for d in data:
        if d.observation.kind == "native_time":
            native.setdefault((d.workload, d.observation.point["cpus"]), []).append(
                d.observation.value
            )
    rows = []
    for d, v in zip(data, verified, strict=True):
        key = (d.workload, d.observation.point["cpus"])
        if d.observation.kind != "asi_time" or key not in native:
            continue
        measured = 1 - float(np.mean(native[key])) / d.observation.value
        rows.append(
            [
                d.observation.label,
                _tags(d),
                f"{measured:.3f}",
                f"{v['throughput_loss_p50']:.3f}",
                f"{v['throughput_loss_p05']:.3f}-{v['throughput_loss_p95']:.3f}",
            ]
        )
    return rows


def ibpb_pair_rows(data, verified, prior: Sequence[float]) -> list[list[str]]:
    """IBPB on minus IBPB off, for every pair of data at the same point and quantity.

    A pair is two data with the same workload, stage, CPUs, overrides and
    quantity, one tagged ``ibpb`` true and one false (fio ASI runs pair their
    ASI time per op, published points their value).
    """

    def key(d):
        tags = d.tags
        return (
            d.workload,
            tags.stage,
            d.observation.point["cpus"],
            d.kept_overrides,
            d.observation.kind,
        )

    off = {}
    for d, v, before in zip(data, verified, prior, strict=True):
        if d.tags.asi and d.tags.ibpb is False:
            off.setdefault(key(d), (d, v, before))
    rows = []
    for d, v, before in zip(data, verified, prior, strict=True):
        if not (d.tags.asi and d.tags.ibpb is True and key(d) in off):
            continue
        d_off, v_off, before_off = off[key(d)]
        measured = d.observation.value - d_off.observation.value
        predicted = v["predicted"] - v_off["predicted"]
        rows.append(
            [
                f"{d.observation.label} - {d_off.observation.label}",
                quantity_text(d.observation.kind),
                _g(measured),
                _g(before - before_off),
                _g(predicted),
                f"{predicted - measured:+.3g}",
            ]
        )
    return rows


def identifiability_lines(result: FitResult) -> list[str]:
    """What the data pin, in sentences (empty when not computed)."""
    ident = result.identifiability
    if ident is None:
        return []
    return [f"- {line}" for line in ident.lines()]


def cost_rows(result: FitResult, units: Mapping[str, str]) -> list[list[str]]:
    rows = []
    for name, fit in result.costs.items():
        status = fit.status + (f", at {fit.bound} bound" if fit.bound else "")
        rows.append(
            [
                name,
                units[name],
                _prior_text(fit),
                _posterior_text(fit),
                f"{fit.shift:+.2f}",
                f"{fit.width_ratio:.2f}",
                status,
            ]
        )
    return rows


def _names(fits: Sequence[CostFit]) -> str:
    return ", ".join(f.name for f in fits) if fits else "none"


BOUND_WANTS = {"low": "wants less than its low end", "high": "wants more than its high end"}
"""What a cost at a prior bound says about the data, by the end it stopped at."""


def bound_text(fits: Sequence[CostFit]) -> str:
    """The costs stopped at a prior bound, each with the direction the data pull it."""
    at = [f for f in fits if f.bound]
    return ", ".join(f"{f.name} ({BOUND_WANTS[f.bound]})" for f in at) if at else "none"


def summary_lines(result: FitResult) -> list[str]:
    """Which costs the data moved, narrowed, pushed to a bound, or left alone."""
    fits = list(result.costs.values())
    moved = [f for f in fits if "moved" in f.status]
    moved_text = (
        ", ".join(f"{f.name} ({_pct(np.exp(f.log_median - f.prior.center) - 1)})" for f in moved)
        if moved
        else "none"
    )
    return [
        f"- **Moved by the data** (median shifted >= 0.1 prior sd): {moved_text}",
        f"- **Narrowed** (posterior sd <= 0.9 of the prior's): "
        f"{_names([f for f in fits if 'narrowed' in f.status])}",
        "- **At a prior bound** (the data want a value beyond the documented range; the "
        f"median stopped inside it): {bound_text(fits)}",
        f"- **Kept at their priors** (not constrained by these data): "
        f"{_names([f for f in fits if not f.constrained])}",
    ]


def correlation_lines(result: FitResult) -> list[str]:
    """The written correlations, as a sentence and a table (empty when there are none)."""
    if not result.correlations:
        return []
    return [
        "",
        "Correlations written to the profile (`cpu.correlations`: posterior correlation of the "
        "log costs, over the constrained costs and those it links to them; each cost keeps "
        "its marginal above):",
        "",
        table(["a", "b", "rho"], [[a, b, f"{rho:+.3f}"] for a, b, rho in result.correlations]),
    ]


def spread_rows(published) -> list[list[str]]:
    """p05, p50, p95 of the loss per published point, and p05-p95 with costs independent."""
    rows = []
    for d, v in published:
        row = [d.observation.label]
        row += [f"{v[f'throughput_loss_{q}']:.3f}" for q in ("p05", "p50", "p95")]
        width = v["throughput_loss_p95"] - v["throughput_loss_p05"]
        row.append(f"{width:.3f}")
        if "throughput_loss_p05_independent" in v:
            low, high = v["throughput_loss_p05_independent"], v["throughput_loss_p95_independent"]
            row.append(f"{low:.3f}-{high:.3f} (width {high - low:.3f})")
        else:
            row.append("= p05-p95")
        rows.append(row)
    return rows


def vm_exit_lines(inputs, default_workload: str) -> list[str]:
    """The VM exits per second per vCPU read from ``perf kvm stat`` reports, by reason."""
    if not getattr(inputs, "vm_exits", ()):
        return []
    reasons = list(VM_EXIT_REASONS)
    rows = []
    for v in inputs.vm_exits:
        rates = v.stat.rates()
        other = ", ".join(f"{k} {n}" for k, n in v.stat.other.items()) or "none"
        rows.append(
            [
                display_path(v.stat.path),
                f"`{v.workload or default_workload}`",
                f"{v.stat.seconds:g} s x {v.stat.vcpus}",
                *(_g(rates[r]) for r in reasons),
                other,
            ]
        )
    return [
        "",
        "## VM exits (perf kvm stat)",
        "",
        "Per second per vCPU; they replace the workload's `vmexits_<reason>_per_s` in its data. "
        "Samples of reasons the model does not price are listed as other.",
        "",
        table(["report", "workload", "recorded", *reasons, "other (samples)"], rows),
    ]


def render_report(
    *,
    name,
    cfg,
    data,
    rates,
    result: FitResult,
    verified,
    inputs,
    profile_path: Path,
    workload_paths,
    prior: Sequence[float],
    mismatches: Sequence[str] = (),
    confidence: Sequence[dict] = (),
) -> str:
    """The whole report as Markdown text."""
    units = {n: s["unit"] for n, s in cfg.cpu.costs.items()}
    lines = [
        f"# Calibration report: `{name}`",
        "",
        f"Base profile `{cfg.cpu.name}`; model {MODEL_VERSION}; seed {cfg.seed}, "
        f"{cfg.samples} samples. Fit {'converged' if result.success else 'did NOT converge'} "
        f"({result.evaluations} model evaluations: {result.message}).",
        "",
        f"- profile: `{profile_path}` (use `cpu={name}`)",
        *(f"- workload: `{p}` (use `workload={w}_{name}`)" for w, p in workload_paths.items()),
        "",
        "## Costs",
        "",
        *summary_lines(result),
        "",
        "What the data can tell apart (data Jacobian at the fit, in prior sds):",
        "",
        *identifiability_lines(result),
        "",
        table(
            [
                "cost",
                "unit",
                "prior median [5-95 %]",
                "calibrated median [5-95 %]",
                "shift (prior sd)",
                "sd / prior sd",
                "status",
            ],
            cost_rows(result, units),
        ),
        *correlation_lines(result),
        "",
        "## Measured vs predicted",
        "",
        "Predicted by the base profile (prior) and by the written profile (calibrated), "
        "composed and evaluated like `asi-answer` does (times: Monte Carlo mean; loss: "
        "median). Error is calibrated - measured; z is that residual in standard errors.",
        "",
        table(
            ["input", "tags", "quantity", "measured", "prior", "calibrated", "error", "z"],
            fit_rows(data, verified, prior),
        ),
    ]
    pairs = ibpb_pair_rows(data, verified, prior)
    if pairs:
        lines += [
            "",
            "IBPB on minus IBPB off at the same point (the difference is what the IBPB "
            "cost has to explain):",
            "",
            table(
                ["pair", "quantity", "measured", "prior", "calibrated", "error"],
                pairs,
            ),
        ]
    paired = paired_loss_rows(data, verified)
    if paired:
        lines += [
            "",
            "Throughput loss of the fio ASI runs against their native runs:",
            "",
            table(["input", "tags", "measured", "predicted p50", "predicted p05-p95"], paired),
        ]
    published = [
        (d, v)
        for d, v in zip(data, verified, strict=True)
        if d.observation.kind == "throughput_loss"
    ]
    if published:
        lines += [
            "",
            "Predictive spread of the throughput loss at the published points, with the "
            "profile's correlations and with every cost drawn independently:",
            "",
            table(
                ["input", "p05", "p50", "p95", "p95 - p05", "p05-p95 independent"],
                spread_rows(published),
            ),
        ]
    if rates:
        lines += [
            "",
            "## Native event rates (asi=off runs)",
            "",
            "fio's CPU time per I/O is `cpu% / 100 * job_runtime / total_ios`; `base_time` "
            "is fitted so that the model reproduces the native time per op.",
            "",
            table(
                [
                    "workload",
                    "runs",
                    "time/op [ns]",
                    "usr/op [ns]",
                    "sys/op [ns]",
                    "ctx/op",
                    "majf/op",
                    "minf/op",
                    "fitted base_time [ns]",
                ],
                [
                    [
                        w,
                        str(r.runs),
                        _g(r.time_per_op),
                        _g(r.usr_per_op),
                        _g(r.sys_per_op),
                        _g(r.ctx_per_op, 3),
                        _g(r.majf_per_op, 3),
                        _g(r.minf_per_op, 3),
                        _g(result.base_times[w]),
                    ]
                    for w, r in rates.items()
                ],
            ),
        ]
        if any(r.majf_per_op > 1e-3 for r in rates.values()):
            lines += ["", "Major faults are not modelled: their time ends up in `base_time`."]
    bound = [d.observation.label for d, e in zip(data, result.sys_excess, strict=True) if e > 0]
    if bound:
        lines += [
            "",
            f"The modelled kernel time exceeds the measured system time for: {', '.join(bound)} "
            "(native costs pushed against the sys_cpu bound).",
        ]
    if mismatches:
        lines += [
            "",
            "**Warning**: the written profile does not reproduce the fit for: "
            f"{'; '.join(mismatches)}. The model's cost sampling may have changed under "
            "pipeline/fit.py; please report it.",
        ]
    if confidence:
        lines += [
            "",
            "## Confidence before and after",
            "",
            "The probability that each measured workload meets the 1 % target (and stays under "
            "5 %) after the whole roadmap, under the base profile's priors and under the "
            "calibrated profile (shares of paired cost samples):",
            "",
            table(
                [
                    "workload",
                    "stage",
                    "P(<1 %) prior",
                    "P(<1 %) calibrated",
                    "P(<5 %) prior",
                    "P(<5 %) calibrated",
                ],
                [
                    [
                        f"`{r['workload']}`",
                        f"`{r['stage']}`",
                        f"{r['p_meets_target_prior']:.2f}",
                        f"{r['p_meets_target_calibrated']:.2f}",
                        f"{r['p_under_threshold_prior']:.2f}",
                        f"{r['p_under_threshold_calibrated']:.2f}",
                    ]
                    for r in confidence
                ],
            ),
        ]
    lines += vm_exit_lines(inputs, cfg.workload.name)
    lines += [
        "",
        "## Inputs",
        "",
        table(
            ["file", "kind", "sha256"],
            [[display_path(f.path), f.kind, f.sha256] for f in inputs.files],
        ),
        "",
    ]
    return "\n".join(lines)
