"""The answer for one configuration: every roadmap stage, from the store or the model.

Every stage of ``roadmap`` is evaluated for the same configuration with the
same cost draws (common random numbers), so the differences between stages
are paired, not noise. :func:`run` is the text ``asi-answer`` prints
(:mod:`pipeline.cli.answer`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from model.budget import cost_budget
from model.costs import ASI_COSTS
from model.evaluate import OVERHEAD_PARTS, evaluate
from model.mechanism import EXIT_REASONS
from model.params import DEFAULT_MITIGATIONS, VM_EXIT_REASONS
from pipeline.configuration.compose import Composer, cost_specs, costs_for, point_from_config
from pipeline.configuration.compose import composer as default_composer
from pipeline.configuration.errors import ConfigError
from pipeline.projection.projection import check_source, stored_stages
from pipeline.projection.verdicts import (
    BASELINE_TEXT,
    annotate,
    beats_default_from,
    crossing_line,
)
from pipeline.store.schema import METRIC_COLUMNS, SLOWDOWN_QUANTILES


def _without_group(overrides: Sequence[str], group: str) -> list[str]:
    """Drop ``group=option`` overrides (keep ``group.key=value`` ones)."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != group]


def stage_points(cfg, overrides: Sequence[str], composer: Composer | None = None) -> list[dict]:
    """The model point of every roadmap stage, in order, for the configuration."""
    stages = list(cfg.roadmap.stages)
    if not stages:
        raise ConfigError("roadmap.stages must list at least one mitigations preset")
    base = _without_group(overrides, "mitigations")
    compose = (composer or default_composer()).compose
    return [point_from_config(compose([*base, f"mitigations={stage}"])) for stage in stages]


def _evaluate(points: list[dict], costs) -> pd.DataFrame:
    columns = {name: np.array([p[name] for p in points]) for name in points[0]}
    return pd.DataFrame(evaluate(columns, costs))


def evaluate_stages(
    overrides: Sequence[str] = (), composer: Composer | None = None
) -> tuple[pd.DataFrame, object]:
    """One row per roadmap stage, in roadmap order, for the configuration ``overrides`` gives.

    Returns the table and the base composed config.
    """
    composer = composer or default_composer()
    cfg = composer.compose(overrides)
    points = stage_points(cfg, overrides, composer)
    table = _evaluate(points, costs_for(cfg))
    table.insert(0, "stage", list(cfg.roadmap.stages))
    return annotate(table, cfg.baseline.name), cfg


def answer_stages(
    overrides: Sequence[str] = (), composer: Composer | None = None
) -> tuple[pd.DataFrame, object, str]:
    """:func:`evaluate_stages`, read from the results store when it holds every stage.

    ``answer.source``: ``auto`` (the store if it holds every stage, else the
    model), ``store`` (the store or a one-line error) or ``model``. Returns
    the table, the base config and a note saying which source was used.
    """
    composer = composer or default_composer()
    cfg = composer.compose(overrides)
    source = check_source(cfg.answer.source)
    points = stage_points(cfg, overrides, composer)
    stages = list(cfg.roadmap.stages)
    table, note = (
        (None, "answer.source=model") if source == "model" else stored_stages(cfg, points, stages)
    )
    if table is None:
        if source == "store":
            raise ConfigError(f"answer.source=store: {note}")
        table, note = _evaluate(points, costs_for(cfg)), f"evaluated directly ({note})"
    table.insert(0, "stage", stages)
    return annotate(table, cfg.baseline.name), cfg, note


VS_DIMENSIONS = {"vs_cpus": ("cpus", "CPUs"), "vs_slots": ("ephmap_slots", "slots")}
"""``answer.<key>``: the point parameter it varies and the label of its columns."""


def evaluate_vs(
    overrides: Sequence[str],
    key: str,
    values: Sequence[int],
    *,
    cfg=None,
    points: list[dict] | None = None,
) -> pd.DataFrame:
    """Every stage at every value of one dimension (``answer.vs_cpus`` or ``answer.vs_slots``).

    Rows are ordered by stage, then value; the column ``value`` holds the value.
    ``cfg`` and the stages' ``points`` may be passed in when the caller already
    composed them (each stage costs a Hydra composition).
    """
    param, _ = VS_DIMENSIONS[key]
    cfg = default_composer().compose(overrides) if cfg is None else cfg
    try:
        values = [int(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(
            f"answer.{key} must be a list of integers >= 1, got {list(values)}"
        ) from None
    if any(v < 1 for v in values):
        raise ConfigError(f"answer.{key} must be a list of integers >= 1, got {values}")
    base = stage_points(cfg, overrides) if points is None else points
    points = [p | {param: v} for p in base for v in values]
    table = _evaluate(points, costs_for(cfg))
    table.insert(0, "value", [v for _ in cfg.roadmap.stages for v in values])
    table.insert(0, "stage", [s for s in cfg.roadmap.stages for _ in values])
    return annotate(table, cfg.baseline.name)


def _pct(x: float) -> str:
    """A percentage with enough digits near the 1 % and 5 % lines to tell which side it is."""
    x = 100 * x
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "") + _pct(x)


def conditional_on(cfg) -> str:
    """What the probabilities are conditional on: the profile's priors or a calibrated posterior."""
    provenance = cfg.cpu.get("provenance")
    if not provenance:
        return f"the priors of cpu={cfg.cpu.name} (uncalibrated cost ranges and their sources)"
    inputs = len(provenance.get("inputs") or ())
    return (
        f"the posterior of cpu={cfg.cpu.name}, calibrated by asi-calibrate on "
        f"{provenance.get('date', '?')} from {inputs} input file(s) "
        f"(base profile {provenance.get('base_profile', '?')})"
    )


def default_line(table: pd.DataFrame, cfg) -> str:
    """The comparison with the kernel's default mitigations, in one paragraph."""
    on = [m for m in DEFAULT_MITIGATIONS if cfg.cpu[f"default_{m}"]]
    dropped = [m for m in on if not cfg.cpu[f"asi_keeps_{m}"]]
    last = table.iloc[-1]
    stage = beats_default_from(table)
    when = (
        f"faster than the default from {stage} on"
        if stage
        else "not faster than the default at any stage"
    )
    return (
        f"Against the kernel's default mitigations on {cfg.cpu.name} "
        f"({', '.join(on) if on else 'none with a per-event cost'}; ASI drops "
        f"{', '.join(dropped) if dropped else 'none of them'}): ASI is {when}; after {last.stage} "
        f"{_signed(last.slowdown_vs_default_p50)} % [{_signed(last.slowdown_vs_default_p05)} to "
        f"{_signed(last.slowdown_vs_default_p95)} %] (negative: faster), P(faster) {last.p_beats_default:.2f}."
    )


def format_table(table: pd.DataFrame, cfg) -> str:
    """A readable, fixed-width table plus the one-sentence answer."""
    header = (
        f"ASI slowdown along the roadmap: workload={cfg.workload.name} cpu={cfg.cpu.name} "
        f"cpus={cfg.cpus} ephmap.slots={cfg.ephmap.slots} samples={cfg.samples} seed={cfg.seed}"
    )
    rows = [
        (
            "stage",
            "tput loss % p50 [p05-p95]",
            "slowdown % p50 [p05-p95]",
            "P(<1 %)",
            "P(<5 %)",
            "vs default % p50",
            "exits/op",
            "top exit source",
            "top remaining cost",
            "verdict",
        )
    ]
    for r in table.itertuples():
        rows.append(
            (
                r.stage,
                f"{_pct(r.throughput_loss_p50)} [{_pct(r.throughput_loss_p05)}-{_pct(r.throughput_loss_p95)}]",
                f"{_pct(r.slowdown_p50)} [{_pct(r.slowdown_p05)}-{_pct(r.slowdown_p95)}]",
                f"{r.p_meets_target:.2f}",
                f"{r.p_under_threshold:.2f}",
                f"{_signed(r.slowdown_vs_default_p50)}",
                f"{r.exits_per_op:.3g}",
                r.dominant_exit_source,
                f"{r.dominant_cost} ({100 * r.dominant_cost_share:.0f} %)"
                if r.dominant_cost != "none"
                else "none",
                r.verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    last = table.iloc[-1]
    versus = (
        ""
        if cfg.baseline.name == "mitigations_off"
        else f" (verdicts against {BASELINE_TEXT[cfg.baseline.name]})"
    )
    answer = (
        f"Long term (after {last.stage}): slowdown {_pct(last.slowdown_p50)} % "
        f"[{_pct(last.slowdown_p05)}-{_pct(last.slowdown_p95)} %], throughput loss "
        f"{_pct(last.throughput_loss_p50)} %: {last.verdict}{versus}; what remains is mostly "
        f"{last.dominant_cost}.\nConfidence: P(meets the 1 % target) {last.p_meets_target:.2f}, "
        f"P(under 5 %) {last.p_under_threshold:.2f} after the whole roadmap, conditional on "
        f"{conditional_on(cfg)}."
    )
    return "\n".join([header, "", *lines, "", answer, "", default_line(table, cfg)])


def _fixed_width(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_overhead(table: pd.DataFrame) -> str:
    """Where the mean extra time per op goes, per stage [ns/op] (:data:`OVERHEAD_PARTS`)."""
    parts = list(OVERHEAD_PARTS)
    rows = [("stage", *(p.replace("_", " ") for p in parts), "total")]
    for r in table.itertuples():
        rows.append(
            (
                r.stage,
                *(f"{getattr(r, f'overhead_ns_{p}'):,.1f}" for p in parts),
                f"{r.extra_ns_per_op:,.1f}",
            )
        )
    legend = [f"  {p.replace('_', ' ')}: {text}" for p, text in OVERHEAD_PARTS.items()]
    return "\n".join(
        ["Where the extra time goes, mean ns per op:", "", *_fixed_width(rows), "", *legend]
    )


def format_exit_rates(table: pd.DataFrame) -> str:
    """Exits per second per CPU by the prototype's exit reasons, per stage."""
    rows = [("stage", *(reason for reason in EXIT_REASONS))]
    for r in table.itertuples():
        rows.append((r.stage, *(f"{getattr(r, f'exit_rate_{x}'):,.4g}" for x in EXIT_REASONS)))
    return "\n".join(
        [
            "ASI exits per second per CPU by the prototype's asi_exit reasons "
            "(the asi:asi_exit_pf tracepoint counts page_fault):",
            "",
            *_fixed_width(rows),
        ]
    )


def has_vm_exits(cfg) -> bool:
    """Whether the workload is a guest's: it has VM exits (``workload.vmexits_<reason>_per_s``)."""
    return any(float(cfg.workload[f"vmexits_{r}_per_s"]) > 0 for r in VM_EXIT_REASONS)


def format_vm_exits(table: pd.DataFrame, cfg) -> str:
    """A guest's VM exits per second per vCPU by reason, and the ASI exits each reason causes
    per stage (``exits_vmexit_<reason>`` over the time per op with ASI)."""
    reasons = list(VM_EXIT_REASONS)
    rows = [("stage", *reasons, "all")]
    rows.append(
        (
            "VM exits/s",
            *(f"{float(cfg.workload[f'vmexits_{r}_per_s']):,.4g}" for r in reasons),
            f"{sum(float(cfg.workload[f'vmexits_{r}_per_s']) for r in reasons):,.4g}",
        )
    )
    for r in table.itertuples():
        per_s = [getattr(r, f"exits_vmexit_{x}") / r.t_asi_mean * 1e9 for x in reasons]
        rows.append((r.stage, *(f"{v:,.4g}" for v in per_s), f"{sum(per_s):,.4g}"))
    return "\n".join(
        [
            "VM exits per second per vCPU by reason (workload inputs, first row) and the ASI "
            "exits they cause per stage (the share that touches sensitive data, "
            "cpu.costs.vmexit_share_<reason>):",
            "",
            *_fixed_width(rows),
        ]
    )


def vm_baseline_line(table: pd.DataFrame, cfg) -> str:
    """The comparison with IBPB on every VM exit (and an L1D flush on every VM entry on L1TF
    CPUs), the blanket protection of a host without ASI, in one paragraph."""
    last = table.iloc[-1]
    stage = beats_default_from(table, "slowdown_vs_ibpb_vmexit_p50")
    when = f"cheaper from {stage} on" if stage else "not cheaper at any stage"
    blanket = last.baseline_ns_ibpb_vmexit + last.baseline_ns_l1d_always
    return (
        f"Against IBPB on every VM exit{' and an L1D flush on every VM entry' if cfg.cpu.l1tf else ''} "
        f"(on top of the kernel's default; {last.vm_exits_per_op:,.4g} VM exits per op, "
        f"{_pct(blanket / last.t_native_mean)} % of the native time): ASI is {when}; after "
        f"{last.stage} {_signed(last.slowdown_vs_ibpb_vmexit_p50)} % "
        f"[{_signed(last.slowdown_vs_ibpb_vmexit_p05)} to {_signed(last.slowdown_vs_ibpb_vmexit_p95)} %] "
        f"(negative: cheaper), P(cheaper) {last.p_beats_ibpb_vmexit:.2f}."
    )


JSON_KEYS = (
    "stage",
    *METRIC_COLUMNS,
    *(f"overhead_ns_{p}" for p in OVERHEAD_PARTS),
    "dominant_exit_source",
    "dominant_cost",
    "verdict",
)
"""What ``answer.format=json`` prints per stage: every metric of the model, where the extra
time goes, then the annotations."""


VS_KEYS = ("value", "throughput_loss_p50", *SLOWDOWN_QUANTILES, "extra_ns_per_op")


def _records(frame: pd.DataFrame, keys) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame[list(keys)].to_dict("records")
    ]


def format_json(
    table: pd.DataFrame,
    curves: dict[str, pd.DataFrame] | None = None,
    budget: pd.DataFrame | None = None,
) -> str:
    """A JSON list, one object per stage in roadmap order.

    With ``answer.vs_cpus`` (``vs_slots``), each object also has ``by_cpus``
    (``by_slots``): one entry per value, the value under ``value``. With
    ``answer.budget=true`` the last stage's object has ``budget``: one entry
    per cost (:func:`budgets`; ``null`` needs: not reachable in its range).
    """
    records = _records(table, JSON_KEYS)
    for key, curve in (curves or {}).items():
        name = "by_" + key.removeprefix("vs_")
        for record in records:
            record[name] = _records(curve[curve["stage"] == record["stage"]], VS_KEYS)
    if budget is not None:
        records[-1]["budget"] = (
            [
                {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                for r in _records(budget, budget.columns)
            ]
            if not budget.empty
            else []
        )
    return json.dumps(records, indent=2)


def format_vs(curve: pd.DataFrame, key: str) -> str:
    """Slowdown p50 and extra time per op of every stage at every value of one dimension."""
    _, label = VS_DIMENSIONS[key]
    values = list(dict.fromkeys(curve["value"]))
    rows = [("stage", *(f"{v} {label}" for v in values))]
    for stage, group in curve.groupby("stage", sort=False):
        cells = [
            f"{_pct(r.slowdown_p50)} % ({r.extra_ns_per_op:,.0f} ns)" for r in group.itertuples()
        ]
        rows.append((stage, *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"Slowdown p50 (mean extra time per op) by {label}:", "", *lines])


def run(argv: Sequence[str], composer: Composer | None = None) -> str:
    """The text ``asi-answer`` prints for command-line overrides ``argv``."""
    table, cfg, source = answer_stages(argv, composer)
    keys = [key for key in VS_DIMENSIONS if cfg.answer[key]]
    # composed once for every curve and the budget
    points = stage_points(cfg, argv, composer) if keys or cfg.answer.budget else None
    curves = {key: evaluate_vs(argv, key, cfg.answer[key], cfg=cfg, points=points) for key in keys}
    budget = budgets(table, cfg, points) if cfg.answer.budget else None
    if cfg.answer.format == "json":
        print(f"source: {source}", file=sys.stderr)  # stdout stays pure JSON
        return format_json(table, curves, budget)
    where = f"Crossings: {crossing_line(table)}.\nSource: {source}."
    return "\n\n".join(
        [
            format_table(table, cfg),
            where,
            format_overhead(table),
            format_exit_rates(table),
            *(
                [format_vm_exits(table, cfg), vm_baseline_line(table, cfg)]
                if has_vm_exits(cfg)
                else []
            ),
            *(format_vs(c, k) for k, c in curves.items()),
            *([format_budget(budget, table, cfg)] if budget is not None else []),
        ]
    )


def budgets(table: pd.DataFrame, cfg, points: list[dict]) -> pd.DataFrame:
    """What the ASI costs would have to cost for the last stage to meet the 1 % target.

    For every cost that adds time at the last stage, and for the two that add
    the most moved together, the median it would need (its draws scaled, their
    spread kept) for the slowdown p50, and for P(meets target) >= 0.9, to reach
    1 % (:func:`model.budget.cost_budget`), within the documented ranges.
    Rows sorted by what the cost adds now; the pair last.
    """
    last = points[-1]
    costs = costs_for(cfg)
    specs = cost_specs(cfg)
    row = table.iloc[-1]

    def lowest(name: str) -> float:
        spec = specs[name]
        low = spec.value if spec.dist == "fixed" else spec.low
        return low / cfg.cpu.ghz if spec.unit == "cycles" else low

    adding = [
        c
        for c in sorted(ASI_COSTS, key=lambda c: -row[f"extra_ns_{c}"])
        if row[f"extra_ns_{c}"] > 0
    ]
    groups = [(c,) for c in adding] + ([tuple(adding[:2])] if len(adding) >= 2 else [])
    rows = []
    for names in groups:
        lows = [lowest(n) for n in names]
        p50 = cost_budget(last, costs, names, lowest=lows)
        confident = cost_budget(last, costs, names, lowest=lows, statistic="confidence")
        rows.append(
            {
                "cost": p50.cost,
                "adds_ns_per_op": float(sum(row[f"extra_ns_{n}"] for n in names)),
                "median_ns": p50.current,
                "lowest_ns": lows[0],
                "p50_factor": p50.factor,
                "confident_factor": confident.factor,
            }
        )
    return pd.DataFrame(rows)


def budget_needs(factor: float | None, median: float, single: bool) -> str:
    """What a budget row asks of a cost (or of a pair, ``single=False``), in words."""
    if factor is None or factor != factor:  # None, or NaN once in a DataFrame
        return "not reachable in range"
    if factor >= 1.0:
        return "already met"
    if single:
        return f"<= {factor * median:,.3g} ns ({100 * factor:.0f} %)"
    return f"each at <= {100 * factor:.0f} %"


def format_budget(frame: pd.DataFrame, table: pd.DataFrame, cfg) -> str:
    """The budget as a table: per cost, the median it would need (and as a share of today's)."""
    last = table.iloc[-1]
    head = (
        f"What it would take for {cfg.workload.name} on {cfg.cpu.name} to meet the 1 % target "
        f"after {last.stage} (slowdown p50 now {_pct(last.slowdown_p50)} %): the median each "
        f"cost would need, its spread kept, within its documented range:"
    )
    if frame.empty:
        return head + "\n\nnothing: ASI adds no time at this stage."
    rows = [("cost", "adds ns/op", "median ns", "range from ns", "p50 at 1 %", "P(meets) >= 0.9")]
    for r in frame.itertuples():
        single = "+" not in r.cost
        rows.append(
            (
                r.cost,
                f"{r.adds_ns_per_op:,.3g}",
                f"{r.median_ns:,.3g}" if single else "",
                f"{r.lowest_ns:,.3g}" if single else "",
                budget_needs(r.p50_factor, r.median_ns, single),
                budget_needs(r.confident_factor, r.median_ns, single),
            )
        )
    return "\n".join([head, "", *_fixed_width(rows)])
