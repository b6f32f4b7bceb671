"""The report's typed tables (:class:`Report`): focus, sensitivity, budgets, the nightly history.

:func:`pipeline.report.build.collect` fills a :class:`Report` from the
aggregation (:mod:`pipeline.report.aggregate`) with the functions here;
:mod:`pipeline.report.render` draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.costs import ASI_COSTS
from asi_slowdown.model.evaluate import QUANTILES
from asi_slowdown.model.mechanism import EXIT_SOURCES
from asi_slowdown.model.units import format_size
from asi_slowdown.pipeline.configuration.checks import ReportSettings
from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.projection.answer import conditional_on
from asi_slowdown.pipeline.projection.budget import budgets
from asi_slowdown.pipeline.projection.projection import (
    CONFIDENCE_COLUMNS,
    at,
    focus_values,
)
from asi_slowdown.pipeline.projection.sensitivity import point_sensitivity
from asi_slowdown.pipeline.projection.verdicts import BASELINE_COLUMNS
from asi_slowdown.pipeline.report.aggregate import (
    Aggregates,
)
from asi_slowdown.pipeline.report.scope import KeptOut, _override_key, model_overrides
from asi_slowdown.pipeline.report.settings import Out
from asi_slowdown.pipeline.store.parts import git_revision
from asi_slowdown.pipeline.store.schema import DIMENSIONS, SLOWDOWN_QUANTILES
from asi_slowdown.pipeline.sweep.grid import Grid, Profile, make_profile
from asi_slowdown.pipeline.validate.run import (
    left_their_band,
    previous_night,
    save_night,
    shipped_or_live,
)

REPORT_METRICS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *SLOWDOWN_QUANTILES,
            *(f"throughput_loss_{q}" for q in QUANTILES),
            *CONFIDENCE_COLUMNS,
            "t_native_mean",
            *(f"extra_ns_{c}" for c in ASI_COSTS),
            *(f"extra_ns_exit_{s}" for s in EXIT_SOURCES),
            *(f"exits_{s}" for s in EXIT_SOURCES),
            *(
                f"{BASELINE_COLUMNS[b]}_{q}"
                for b in ("kernel_default", "ibpb_vmexit")
                for q in QUANTILES
            ),
            "p_beats_default",
            "p_beats_ibpb_vmexit",
            "vm_exits_per_op",
        ]
    )
)
"""The store columns the report reads (cube means per cell), and no other: the quantiles
against each baseline, the confidence, the extra time by cost and by exit source (what
dominates, the waterfall, the budgets), the exits (the dominant source) and the VM exits
(which workloads are guests). The exit rates by reason and the default mitigations' own
costs stay on disk: reading every metric column made the nightly aggregation several
times larger (issue 22)."""


# --------------------------------------------------------------------------- focus and sensitivity
def focus_wanted(
    cfg: DictConfig, workload: str, grid: Grid | None, size: int | None, composer: Composer
) -> dict:
    """The dimensions a workload's projection table is shown at, before snapping to stored values."""
    if size is None:
        base = next(
            (p.base_point for p in (grid.profiles if grid else []) if p.workload == workload), None
        )
        if base is None:
            base = composer.compose_profile([f"workload={workload}"])[1].point
        size = int(base["file_size"])
    return {
        "cpus": cfg.report.focus.cpus or cfg.cpus,
        "file_size": size,
        "ephmap_slots": cfg.report.focus.ephmap_slots or cfg.ephmap.slots,
    }


@dataclass(frozen=True)
class Replaced:
    """A focus value the store lacks for a workload and CPU profile, and the stored one shown."""

    workload: str
    cpu: str
    name: str
    """The dimension (:data:`DIMENSIONS`, as ``report.focus.<name>`` names it)."""
    wanted: float
    shown: float

    def values(self) -> str:
        """``file_size 2M -> 64M``: sizes as fio writes them, counts as integers."""
        show = format_size if self.name == "file_size" else str
        return f"{self.name} {show(int(self.wanted))} → {show(int(self.shown))}"


def replaced_text(replaced: Sequence[Replaced]) -> str | None:
    """One sentence naming every replaced focus value; None when each focus value was stored."""
    if not replaced:
        return None
    by_row: dict[tuple[str, str], list[str]] = {}
    for r in replaced:
        by_row.setdefault((r.workload, r.cpu), []).append(r.values())
    parts = "; ".join(f"{w} on {c}: {', '.join(v)}" for (w, c), v in by_row.items())
    return (
        f"Focus values not in the store, shown at the nearest stored value instead: {parts} "
        f"(sweep the wanted value, or set report.focus, to see it)."
    )


def focus_table(
    projection: pd.DataFrame,
    cube: pd.DataFrame,
    cfg: DictConfig,
    grid: Grid | None,
    size: int | None,
    composer: Composer,
) -> tuple[pd.DataFrame, list[Replaced]]:
    """Every stage of each (workload, cpu) at its focus dimensions (nearest stored values).

    Also returns each wanted focus value (:func:`focus_wanted`) the store lacks and
    the nearest stored value (:func:`pipeline.projection.projection.focus_values`) shown in its place.
    """
    parts, replaced = [], []
    for (workload, cpu), _ in cube.groupby(["workload", "cpu"], sort=True):
        wanted = focus_wanted(cfg, workload, grid, size, composer)
        chosen = focus_values(cube, workload, cpu, wanted)
        replaced += [
            Replaced(workload, cpu, name, float(wanted[name]), float(value))
            for name, value in chosen.items()
            if value != wanted[name]
        ]
        parts.append(at(projection, {"workload": workload, "cpu": cpu, **chosen}))
    table = pd.concat(parts, ignore_index=True) if parts else projection.head(0)
    return table, replaced


def stage_profile(
    grid: Grid | None, workload: str, cpu: str, stage: str, cfg: DictConfig, composer: Composer
) -> Profile:
    """The profile (cost draws, base point) of one workload, CPU profile and stage."""
    for profile in grid.profiles if grid else []:
        if (profile.workload, profile.cpu, profile.mitigations, profile.profile_overrides) == (
            workload,
            cpu,
            stage,
            "",
        ):
            return profile
    overrides = [f"workload={workload}", f"cpu={cpu}", f"mitigations={stage}"]
    return make_profile(
        *composer.compose_profile([*overrides, f"seed={cfg.seed}", f"samples={cfg.samples}"])
    )


def sensitivities(
    focus: pd.DataFrame, stage: str, grid: Grid | None, cfg: DictConfig, composer: Composer
) -> pd.DataFrame:
    """:func:`pipeline.projection.sensitivity.point_sensitivity` of each focus point at ``stage``."""
    tables = []
    for _, row in focus[focus["stage"] == stage].iterrows():
        profile = stage_profile(grid, row["workload"], row["cpu"], stage, cfg, composer)
        point = {**profile.base_point, **{k: row[k] for k in DIMENSIONS}}
        table, stats = point_sensitivity(
            point, profile.costs(), row["slowdown_p50"], profile.correlations
        )
        tables.append(
            table.assign(
                workload=row["workload"],
                cpu=row["cpu"],
                median=stats["p50"],
                stored_p50=stats["stored_p50"],
                matches=stats["matches"],
                samples=int(stats["samples"]),
            )
        )
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _hydra_value(value: object) -> str:
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def stored_cost_overrides(composed: Profile, stored: Profile) -> list[str]:
    """Overrides that turn the composed profile's cost distributions into the stored ones.

    A grid may fix a cost (``cpu.costs.ephmap_pte.high=500``) that the report's own
    composition does not carry; the budget must solve the costs the store was swept with.
    """
    extra = [f"cpu.ghz={stored.ghz!r}"] if composed.ghz != stored.ghz else []
    for name, spec in stored.cost_specs.items():
        mine = composed.cost_specs.get(name)
        for key, value in asdict(spec).items():
            if mine is None or getattr(mine, key) != value:
                extra.append(f"cpu.costs.{name}.{key}={_hydra_value(value)}")
    return extra


def cpu_config(
    cpu: str, stored: Profile, cfg: DictConfig, overrides: Sequence[str], composer: Composer
) -> tuple[DictConfig, bool]:
    """A composed configuration whose CPU profile draws the costs ``stored`` was swept with.

    The report's own model overrides, ``cpu``, seed and samples; when the store's
    profile has other cost distributions (a grid that fixed a cost), the overrides
    that restore them (:func:`stored_cost_overrides`). Returns the config and
    whether its cost profile is the stored one.
    """
    mine = [f"cpu={cpu}", f"seed={stored.seed}", f"samples={stored.samples}"]
    taken = {_override_key(o) for o in mine} | {"experiment"}
    wanted = [o for o in model_overrides(overrides) if _override_key(o) not in taken] + mine
    composed, model = composer.compose_profile(wanted)
    profile = make_profile(composed, model)
    if profile.cost_profile == stored.cost_profile:
        return composed, True
    extra = stored_cost_overrides(profile, stored)
    composed, model = composer.variant(wanted, extra)
    return composed, make_profile(composed, model).cost_profile == stored.cost_profile


BUDGET_COLUMNS = (
    "workload",
    "cpu",
    "stage",
    "slowdown_p50",
    "p_meets_target",
    "cost",
    "adds_ns_per_op",
    "median_ns",
    "lowest_ns",
    "p50_factor",
    "confident_factor",
    "matches",
)
"""The budget table: per focus point and cost (or the top pair, ``a+b``), what
:func:`pipeline.projection.budget.budgets` finds, and whether the costs solved are the stored ones."""


def focus_budgets(
    focus: pd.DataFrame,
    stage: str,
    grid: Grid | None,
    cfg: DictConfig,
    overrides: Sequence[str],
    composer: Composer,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """What each cost would need at ``stage`` for every focus (workload, CPU profile).

    :func:`pipeline.projection.budget.budgets` on each focus point (the stored
    profile's point at the focus dimensions, as the sensitivity uses it) with the
    CPU profile's composed configuration (:func:`cpu_config`, one composition per
    CPU profile), ranked by the stored row's extra time per cost: every cost that
    adds time, and the top two moved together, as ``asi-answer answer.budget=true``
    prints them (a few dozen model runs on one point per cost: about 0.2 s a focus
    point at 1024 samples). Returns the table (:data:`BUDGET_COLUMNS`) and, per CPU
    profile, what its probabilities are conditional on
    (:func:`pipeline.projection.answer.conditional_on`).
    """
    tables, conditions, configs = [], {}, {}
    for _, row in focus[focus["stage"] == stage].iterrows():
        workload, cpu = str(row["workload"]), str(row["cpu"])
        profile = stage_profile(grid, workload, cpu, stage, cfg, composer)
        key = (cpu, profile.cost_profile)
        if key not in configs:
            configs[key] = cpu_config(cpu, profile, cfg, overrides, composer)
        composed, matches = configs[key]
        conditions.setdefault(cpu, conditional_on(composed))
        point = {**profile.base_point, **{k: row[k] for k in DIMENSIONS}}
        table = budgets(pd.DataFrame([row.to_dict()]), composed, [point])
        if table.empty:
            continue
        tables.append(
            table.assign(
                workload=workload,
                cpu=cpu,
                stage=stage,
                slowdown_p50=row["slowdown_p50"],
                p_meets_target=row["p_meets_target"],
                matches=matches,
            )
        )
    for cpu in sorted(set(focus["cpu"]) - set(conditions)):
        conditions[cpu] = conditional_on(composer.compose([f"cpu={cpu}"]))
    if not tables:
        return pd.DataFrame(columns=list(BUDGET_COLUMNS)), conditions
    return pd.concat(tables, ignore_index=True)[list(BUDGET_COLUMNS)], conditions


# --------------------------------------------------------------------------- collecting
@dataclass
class Report:
    """Everything the page, the Markdown and the CSVs show."""

    settings: ReportSettings
    stages: list[str]
    focus_cpu: str
    aggregates: Aggregates
    coverage: pd.DataFrame
    projection: pd.DataFrame
    scenarios: pd.DataFrame
    focus: pd.DataFrame
    sensitivity: pd.DataFrame
    grid_points: int | None
    missing: int
    missing_examples: pd.DataFrame
    scheduler: str
    comparison: pd.DataFrame | None = None
    previous_night: str | None = None
    history_nights: pd.DataFrame = field(default_factory=pd.DataFrame)
    history_part: str | None = None
    history_error: str | None = None
    """Why tonight could not be recorded (the report is still written), or None."""
    history_warnings: list[str] = field(default_factory=list)
    """One line per recording of the history that failed its check and was left out."""
    comparison_note: str | None = None
    """Why there is no comparison in nightly mode (the first night), or None."""
    timings: dict[str, float] = field(default_factory=dict)
    figures: list = field(default_factory=list)
    generated_at: str = ""
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)
    """What each cost would need at the final stage (:func:`focus_budgets`)."""
    conditions: dict[str, str] = field(default_factory=dict)
    """Per CPU profile, what its probabilities are conditional on."""
    baseline: str = "mitigations_off"
    """``baseline.name``: what the verdicts compare with."""
    kept_out: KeptOut = field(default_factory=KeptOut)
    """The what-if points left out of the roadmap (:func:`preset_points`, :func:`store_presets`)."""
    focus_replaced: list[Replaced] = field(default_factory=list)
    """Focus values the store lacks and the stored values shown instead (:func:`focus_table`)."""
    history_replaced: str | None = None
    """Nightly mode, a second run on the same date: which earlier recording it replaced."""
    hint: str | None = None
    """What to sweep or set when the store covers little of the grid
    (:func:`~pipeline.report.scope.coverage_hint`), or None."""
    validation: dict | None = None
    """The model against the public record (:func:`validation`): scored cases, their source,
    and the cases that left their band since the previous night."""


def validation(report: Report, composer, err: Out) -> dict:
    """The model against the public record for the report: ``asi-validate``'s cases (the
    shipped score when it is of this model, else computed in sample now), and in nightly
    mode the night committed beside the history and the cases that left their band since
    the previous night (a ``warning:`` line each)."""
    score, source = shipped_or_live(composer)
    flags: list[str] = []
    s = report.settings
    if s.mode == "nightly":
        flags = left_their_band(previous_night(Path(s.history), s.night), score)
        try:
            save_night(Path(s.history), s.night, score)
        except OSError as exc:
            err(f"error: the night's validation was not recorded: {exc}")
        for line in flags:
            err(f"warning: {line}")
    return {"score": score, "source": source, "flags": flags}


def nightly(report: Report, err: Out) -> None:
    """Nightly mode: record tonight's focus projection, compare with the previous night; read the trend.

    Faults lose nothing: a night that cannot be recorded (disk full) is one
    ``error:`` line and :attr:`Report.history_error`, and the report is still
    written; a recording that fails its check is quarantined, named in a
    ``warning:`` line, and left out of the trend and the comparison.
    """
    s = report.settings
    if s.mode == "nightly" and not report.focus.empty:
        extra = {
            "coverage": report.coverage["stored_points"].sum() / report.grid_points
            if report.grid_points
            else np.nan,
            "model_version": MODEL_VERSION,
            "git_revision": git_revision(),
        }
        earlier = hist.recordings(s.history, s.night)
        try:
            report.history_part = str(hist.record(s.history, report.focus, s.night, extra))
            if earlier:
                report.history_replaced = (
                    f"{s.night} was recorded before (at "
                    f"{', '.join(f'{t:%H:%M:%S}' for t in earlier)} UTC): this run replaced "
                    f"that recording"
                )
                err(f"asi-report: {report.history_replaced}, in {report.history_part}")
            else:
                err(f"asi-report: recorded the {s.night} projection in {report.history_part}")
        except hist.HistoryWriteError as exc:
            report.history_error = str(exc)
            err(f"error: {exc}")
    rows, unreadable = hist.read(s.history)
    report.history_warnings = [item.warning() for item in unreadable]
    for line in report.history_warnings:
        err(line)
    history = hist.nights(rows)
    report.history_nights = history
    previous = hist.previous_night(history, s.night) if not history.empty else None
    report.previous_night = previous
    if previous is None:
        if s.mode == "nightly":
            others = set(history["date"]) - {s.night} if not history.empty else set()
            first = " (it is the first night recorded)"
            if report.history_replaced:
                first = f" ({report.history_replaced}; it is not a new night)"
            report.comparison_note = (
                f"No night before {s.night} in the history {s.history}"
                + ("" if others else first)
                + ": nothing to compare with"
            )
            err(f"asi-report: {report.comparison_note}")
        return
    if not report.focus.empty:
        report.comparison = hist.compare(
            report.focus, history[history["date"] == previous], s.threshold
        )
        err(f"asi-report: compared with {previous}: {hist.outcome(report.comparison, s.threshold)}")
