"""The answer for one configuration: every roadmap stage, from the store or the model.

Every stage of ``roadmap`` is evaluated for the same configuration with the
same cost draws (common random numbers), so the differences between stages
are paired, not noise. :func:`run` is the text ``asi-answer`` prints
(:mod:`pipeline.cli.answer`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.evaluate import OVERHEAD_PARTS, evaluate
from asi_slowdown.model.mechanism import EXIT_REASONS, GUEST_SOURCES, active_defaults
from asi_slowdown.model.params import DEFAULT_MITIGATIONS, VM_EXIT_REASONS
from asi_slowdown.pipeline.configuration.checks import (
    VS_DIMENSIONS,
    check_answer,
    check_roadmap,
    check_source,
    check_store_path,
    check_vs,
)
from asi_slowdown.pipeline.configuration.compose import CONF_DIR, Composer
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import PARAM_LABELS, model_profile
from asi_slowdown.pipeline.projection.budget import budgets, format_budget
from asi_slowdown.pipeline.projection.projection import stored_stages
from asi_slowdown.pipeline.projection.text import fixed_width as _fixed_width
from asi_slowdown.pipeline.projection.text import pct as _pct
from asi_slowdown.pipeline.projection.text import signed as _signed
from asi_slowdown.pipeline.projection.verdicts import (
    BASELINE_TEXT,
    annotate,
    beats_default_from,
    crossing_line,
)
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS, SLOWDOWN_QUANTILES


def _without_group(overrides: Sequence[str], group: str) -> list[str]:
    """Drop ``group=option`` overrides (keep ``group.key=value`` ones)."""
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != group]


def stage_points(cfg, overrides: Sequence[str], composer: Composer | None = None) -> list[dict]:
    """The model point of every roadmap stage, in order, for the configuration."""
    stages = check_roadmap(cfg)
    base = _without_group(overrides, "mitigations")
    compose = (composer or default_composer()).compose_profile
    return [dict(compose([*base, f"mitigations={stage}"])[1].point) for stage in stages]


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
    cfg, model = composer.compose_profile(overrides)
    points = stage_points(cfg, overrides, composer)
    table = _evaluate(points, model.costs())
    table.insert(0, "stage", list(cfg.roadmap.stages))
    return annotate(table, cfg.baseline.name), cfg


MODEL_NOTE = "evaluated directly (answer.source=model)"
"""The source note of a table the model computed because ``answer.source=model`` says so."""


def sourced(
    cfg,
    points: list[dict],
    stages: Sequence[str],
    labels: Sequence[str] | None = None,
    costs=None,
) -> tuple[pd.DataFrame, str]:
    """The metrics of ``points`` from where ``answer.source`` says, and a note saying where.

    ``auto``: the results store if it holds every point, else the model (the note
    says why); ``store``: the store, or a one-line :class:`ConfigError` naming what
    it lacks; ``model``: the model. ``stages`` and ``labels`` are as
    :func:`pipeline.projection.projection.stored_stages` takes them; ``costs`` are the
    config's cost draws if drawn already.
    """
    source = check_source(cfg.answer.source)
    if source == "model":
        return _evaluate(points, _costs(cfg, costs)), MODEL_NOTE
    check_store_path(str(cfg.store.path))
    table, note = stored_stages(cfg, points, stages, labels)
    if table is None:
        if source == "store":
            raise ConfigError(f"answer.source=store: {note}")
        return _evaluate(points, _costs(cfg, costs)), f"evaluated directly ({note})"
    return table, note


def _costs(cfg, costs=None) -> dict:
    """The config's cost draws: ``costs`` when drawn already, else drawn now."""
    return model_profile(cfg).costs() if costs is None else costs


def answer_stages(
    overrides: Sequence[str] = (), composer: Composer | None = None
) -> tuple[pd.DataFrame, object, str]:
    """:func:`evaluate_stages`, read from the results store when it holds every stage.

    ``answer.source`` (:func:`sourced`): ``auto`` (the store if it holds every
    stage, else the model), ``store`` (the store or a one-line error) or
    ``model``. Returns the table, the base config and a note saying which
    source was used.
    """
    composer = composer or default_composer()
    cfg = composer.compose(overrides)
    check_answer(cfg)
    table, note = stage_table(cfg, stage_points(cfg, overrides, composer))
    return table, cfg, note


def stage_table(cfg, points: list[dict], costs=None) -> tuple[pd.DataFrame, str]:
    """The roadmap table of the stages' ``points`` (:func:`sourced`), annotated, and its note."""
    stages = list(cfg.roadmap.stages)
    table, note = sourced(cfg, points, stages, costs=costs)
    table.insert(0, "stage", stages)
    return annotate(table, cfg.baseline.name), note


def vs_points(cfg, key: str, values: Sequence[int], base: list[dict]):
    """Every stage's point at every value: ``(points, stages, values)``, by stage then value."""
    param, _ = VS_DIMENSIONS[key]
    stages = list(cfg.roadmap.stages)
    points = [p | {param: v} for p in base for v in values]
    return points, [s for s in stages for _ in values], [v for _ in stages for v in values]


def _vs_table(table: pd.DataFrame, stages, values, cfg) -> pd.DataFrame:
    table.insert(0, "value", values)
    table.insert(0, "stage", stages)
    return annotate(table, cfg.baseline.name)


def evaluate_vs(
    overrides: Sequence[str],
    key: str,
    values: Sequence[int],
    *,
    cfg=None,
    points: list[dict] | None = None,
) -> pd.DataFrame:
    """Every stage at every value of one dimension (``answer.vs_cpus`` or ``answer.vs_slots``),
    from the model.

    Rows are ordered by stage, then value; the column ``value`` holds the value.
    ``cfg`` and the stages' ``points`` may be passed in when the caller already
    composed them (each stage costs a Hydra composition).
    """
    cfg = default_composer().compose(overrides) if cfg is None else cfg
    values = check_vs(cfg, key, values)
    base = stage_points(cfg, overrides) if points is None else points
    every, stages, column = vs_points(cfg, key, values, base)
    return _vs_table(_evaluate(every, _costs(cfg)), stages, column, cfg)


def answer_vs(cfg, key: str, points: list[dict], costs=None) -> tuple[pd.DataFrame, str]:
    """:func:`evaluate_vs` from where ``answer.source`` says (:func:`sourced`), and the note."""
    param, _ = VS_DIMENSIONS[key]
    values = check_vs(cfg, key, cfg.answer[key])
    every, stages, column = vs_points(cfg, key, values, points)
    labels = [f"{PARAM_LABELS[param]}={v}" for v in column]
    table, note = sourced(cfg, every, stages, labels, costs)
    return _vs_table(table, stages, column, cfg), note


SCORE_FILE = CONF_DIR / "validation" / "score.json"
"""The shipped profiles' score on the public record: ``make docs`` writes it from
``asi-validate`` (:func:`pipeline.validate.run.score_document`), every answer quotes it."""


def validation_line(cfg) -> str:
    """How the shipped profiles predict the public record, or why that score does not apply."""
    try:
        score = json.loads(SCORE_FILE.read_text())
    except (OSError, ValueError):
        return "Validation: no score shipped; run asi-validate."
    if score.get("model_version") != MODEL_VERSION:
        return (
            f"Validation: the shipped score is of model {score.get('model_version')}, this is "
            f"{MODEL_VERSION}; run asi-validate."
        )
    used = "the shipped priors" if cfg.cpu.name in score["profiles"] else "the shipped profiles"
    mine = (
        ""
        if cfg.cpu.name in score["profiles"]
        else f" (not cpu={cfg.cpu.name}: asi-validate cpu={cfg.cpu.name} scores it)"
    )
    return f"Validation of {used}{mine}: {score['summary']} (asi-validate)."


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


def default_shares(row) -> dict[str, float]:
    """Each default mitigation's share of the default's mean cost per op [0-1], largest first
    (only those that cost anything)."""
    costs = {m: float(getattr(row, f"default_ns_{m}")) for m in DEFAULT_MITIGATIONS}
    total = sum(costs.values())
    if total <= 0:
        return {}
    return {m: c / total for m, c in sorted(costs.items(), key=lambda kv: -kv[1]) if c > 0}


def default_line(table: pd.DataFrame, cfg) -> str:
    """The comparison with the kernel's default mitigations, in one paragraph: what the default
    itself costs against ``mitigations=off`` and of what it is made, then ASI against it."""
    flags = {f"default_{m}": bool(cfg.cpu[f"default_{m}"]) for m in DEFAULT_MITIGATIONS}
    runs = active_defaults(flags | {"kernel_version": cfg.kernel.version})
    on = [m for m in DEFAULT_MITIGATIONS if runs[m]]
    dropped = [m for m in on if not cfg.cpu[f"asi_keeps_{m}"]]
    last = table.iloc[-1]
    stage = beats_default_from(table)
    when = (
        f"faster than the default from {stage} on"
        if stage
        else "not faster than the default at any stage"
    )
    shares = default_shares(last)
    made_of = ", ".join(f"{m} {100 * v:.0f} %" for m, v in shares.items()) or "nothing"
    return (
        f"The kernel's default mitigations on {cfg.cpu.name} under Linux {cfg.kernel.release} "
        f"(kernel={cfg.kernel.name}) cost {_pct(last.default_vs_off_p50)} % "
        f"[{_pct(last.default_vs_off_p05)} to {_pct(last.default_vs_off_p95)} %] against "
        f"mitigations=off: {made_of}.\n"
        f"Against them ({', '.join(on) if on else 'none'}; ASI drops "
        f"{', '.join(dropped) if dropped else 'none of them'}): ASI is {when}; after {last.stage} "
        f"{_signed(last.slowdown_vs_default_p50)} % [{_signed(last.slowdown_vs_default_p05)} to "
        f"{_signed(last.slowdown_vs_default_p95)} %] (negative: faster), P(faster) {last.p_beats_default:.2f}."
    )


HEADER_KEYS = ("workload", "cpu", "kernel", "cpus", "ephmap.slots", "samples", "seed")
"""What the answer's first line shows of the configuration; other overrides get the second."""


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def model_overrides(overrides: Sequence[str]) -> list[str]:
    """The command-line overrides that change the answer and the first line does not show.

    Left out: the keys of :data:`HEADER_KEYS`, ``mitigations=`` (every stage sets its
    own preset), and ``answer.*``, ``store.*``, ``hydra.*`` (how and where, not what).
    """
    skipped = (*HEADER_KEYS, "mitigations")
    return [
        o
        for o in overrides
        if _key(o) not in skipped and _key(o).split(".", 1)[0] not in ("answer", "store", "hydra")
    ]


def header_lines(cfg, overrides: Sequence[str] = ()) -> list[str]:
    """The configuration the answer is for: presets and dimensions, then every other override."""
    extra = model_overrides(overrides)
    return [
        f"ASI slowdown along the roadmap: workload={cfg.workload.name} cpu={cfg.cpu.name} "
        f"kernel={cfg.kernel.name} (Linux {cfg.kernel.release}) cpus={cfg.cpus} ephmap.slots={cfg.ephmap.slots} samples={cfg.samples} seed={cfg.seed}",
        "Overrides in force: "
        + (" ".join(extra) if extra else "none (the presets' values, as shipped or configured)"),
    ]


def _exits(x: float) -> str:
    """Exits per op [1/op], always in one notation: three significant digits, scientific."""
    return f"{x:.2e}"


STAGE_COLUMNS: tuple[tuple[str, Callable], ...] = (
    ("stage", lambda r: r.stage),
    (
        "tput loss % p50 [p05-p95]",
        lambda r: (
            f"{_pct(r.throughput_loss_p50)} "
            f"[{_pct(r.throughput_loss_p05)}-{_pct(r.throughput_loss_p95)}]"
        ),
    ),
    (
        "slowdown % p50 [p05-p95]",
        lambda r: f"{_pct(r.slowdown_p50)} [{_pct(r.slowdown_p05)}-{_pct(r.slowdown_p95)}]",
    ),
    ("P(<1 %)", lambda r: f"{r.p_meets_target:.2f}"),
    ("P(<5 %)", lambda r: f"{r.p_under_threshold:.2f}"),
    ("vs default % p50", lambda r: _signed(r.slowdown_vs_default_p50)),
    (
        "default vs off % p50 [p05-p95]",
        lambda r: (
            f"{_pct(r.default_vs_off_p50)} [{_pct(r.default_vs_off_p05)}-{_pct(r.default_vs_off_p95)}]"
        ),
    ),
    ("exits/op", lambda r: _exits(r.exits_per_op)),
    ("top exit source", lambda r: r.dominant_exit_source),
    (
        "top remaining cost",
        lambda r: (
            f"{r.dominant_cost} ({100 * r.dominant_cost_share:.0f} %)"
            if r.dominant_cost != "none"
            else "none"
        ),
    ),
    ("verdict", lambda r: r.verdict),
)
"""The roadmap table's columns: header and cell of a stage's row (a row of the annotated
table). A new column is one more entry."""


def format_table(table: pd.DataFrame, cfg, overrides: Sequence[str] = ()) -> str:
    """A readable, fixed-width table plus the one-sentence answer."""
    rows = [tuple(head for head, _ in STAGE_COLUMNS)]
    rows += [tuple(cell(r) for _, cell in STAGE_COLUMNS) for r in table.itertuples()]
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
        f"{conditional_on(cfg)}.\n{validation_line(cfg)}"
    )
    return "\n".join(
        [
            *header_lines(cfg, overrides),
            "",
            *_fixed_width(rows),
            "",
            answer,
            "",
            default_line(table, cfg),
        ]
    )


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


HOST_INPUTS = {
    "kvm_run_return": "kvm_run_returns_per_s",
    "vmm_syscall": "vmm_io_syscalls_per_s",
    "vmm_switch": "vmm_thread_switches_per_s",
}
"""The workload input behind each of the host's own exit sources around a guest."""


def format_host_exits(table: pd.DataFrame, cfg) -> str:
    """A guest's host exits per second per vCPU by source at every stage (``host_exit_rate_<source>``:
    VM-exit reasons, KVM_RUN returns, the VMM's syscalls and thread switches, zeroing of guest
    RAM), comparable with ``perf kvm stat`` and the prototype's ``asi_exit`` tracepoints."""
    sources = list(GUEST_SOURCES)
    names = [s.removeprefix("vmexit_") for s in sources]
    rows = [("stage", *names, "all")]
    inputs = [
        f"{float(cfg.workload[HOST_INPUTS[s]]):,.4g}" if s in HOST_INPUTS else "-" for s in sources
    ]
    rows.append(("host inputs/s", *inputs, "-"))
    for r in table.itertuples():
        per_s = [getattr(r, f"host_exit_rate_{s}") for s in sources]
        rows.append((r.stage, *(f"{v:,.4g}" for v in per_s), f"{sum(per_s):,.4g}"))
    return "\n".join(
        [
            "Host ASI exits per second per vCPU by source (VM-exit reason, returns of KVM_RUN to "
            "the VMM, the VMM's page-cache syscalls and thread switches, zeroing of guest RAM; "
            "the second row: the workload's own rates of the host's work):",
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

JSON_DERIVED_KEYS = ("default_shares",)
"""Keys each stage's JSON object has besides :data:`JSON_KEYS`: each default mitigation's share
of the default's mean cost (:func:`default_shares`)."""

JSON_SECTIONS = ("configuration", "source", "stages")
"""The keys of ``answer.format=json``'s object, in order."""


def _records(frame: pd.DataFrame, keys) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame[list(keys)].to_dict("records")
    ]


def _by(key: str) -> str:
    """The JSON name of a ``vs_*`` table: ``by_cpus``, ``by_slots``."""
    return "by_" + key.removeprefix("vs_")


def configuration(cfg, overrides: Sequence[str]) -> dict:
    """What the JSON says it answers: the overrides as given, the model version and the
    whole composed configuration (as ``--cfg job`` prints it, interpolations resolved)."""
    return {
        "overrides": list(overrides),
        "model_version": MODEL_VERSION,
        "kernel": {"name": cfg.kernel.name, "release": cfg.kernel.release},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def format_json(
    table: pd.DataFrame,
    curves: dict[str, pd.DataFrame] | None = None,
    budget: pd.DataFrame | None = None,
    *,
    config: dict | None = None,
    sources: dict[str, str] | None = None,
) -> str:
    """One JSON object: ``configuration`` (:func:`configuration`), ``source`` (per table,
    where its numbers came from: ``stages`` and ``by_cpus``/``by_slots``) and ``stages``,
    one object per stage in roadmap order.

    With ``answer.vs_cpus`` (``vs_slots``), each stage object also has ``by_cpus``
    (``by_slots``): one entry per value, the value under ``value``. With
    ``answer.budget=true`` the last stage's object has ``budget``: one entry
    per cost (:func:`budgets`; ``null`` needs: not reachable in its range).
    """
    records = _records(table, JSON_KEYS)
    for record, row in zip(records, table.itertuples(), strict=True):
        record["default_shares"] = default_shares(row)
    for key, curve in (curves or {}).items():
        for record in records:
            record[_by(key)] = _records(curve[curve["stage"] == record["stage"]], VS_KEYS)
    if budget is not None:
        records[-1]["budget"] = (
            [
                {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                for r in _records(budget, budget.columns)
            ]
            if not budget.empty
            else []
        )
    document = dict(zip(JSON_SECTIONS, (config or {}, sources or {}, records), strict=True))
    return json.dumps(document, indent=2)


def format_vs(curve: pd.DataFrame, key: str, source: str | None = None) -> str:
    """Slowdown p50 and extra time per op of every stage at every value of one dimension,
    and (``source``) where the numbers came from."""
    _, label = VS_DIMENSIONS[key]
    values = list(dict.fromkeys(curve["value"]))
    rows = [("stage", *(f"{v} {label}" for v in values))]
    for stage, group in curve.groupby("stage", sort=False):
        cells = [
            f"{_pct(r.slowdown_p50)} % ({r.extra_ns_per_op:,.0f} ns)" for r in group.itertuples()
        ]
        rows.append((stage, *cells))
    where = [] if source is None else ["", f"Source: {source}."]
    return "\n".join(
        [f"Slowdown p50 (mean extra time per op) by {label}:", "", *_fixed_width(rows), *where]
    )


def run(argv: Sequence[str], composer: Composer | None = None) -> str:
    """The text ``asi-answer`` prints for command-line overrides ``argv``.

    Every option is checked before anything is read (:func:`check_answer`); each
    table says where its numbers came from (:func:`sourced`).
    """
    composer = composer or default_composer()
    cfg, model = composer.compose_profile(argv)
    check_answer(cfg)
    points = stage_points(cfg, argv, composer)  # composed once for every table
    costs = model.costs()  # drawn once for every table
    table, source = stage_table(cfg, points, costs)
    curves, sources = {}, {"stages": source}
    for key in (key for key in VS_DIMENSIONS if cfg.answer[key]):
        curves[key], sources[_by(key)] = answer_vs(cfg, key, points, costs)
    budget = budgets(table, cfg, points, costs) if cfg.answer.budget else None
    if cfg.answer.format == "json":
        print(f"source: {source}", file=sys.stderr)  # also in the JSON; stdout stays pure JSON
        return format_json(table, curves, budget, config=configuration(cfg, argv), sources=sources)
    where = f"Crossings: {crossing_line(table)}.\nSource: {source}."
    return "\n\n".join(
        [
            format_table(table, cfg, argv),
            where,
            format_overhead(table),
            format_exit_rates(table),
            *(
                [
                    format_vm_exits(table, cfg),
                    format_host_exits(table, cfg),
                    vm_baseline_line(table, cfg),
                ]
                if has_vm_exits(cfg)
                else []
            ),
            *(format_vs(c, k, sources[_by(k)]) for k, c in curves.items()),
            *([format_budget(budget, table, cfg)] if budget is not None else []),
        ]
    )
