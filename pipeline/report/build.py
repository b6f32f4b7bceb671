"""Collect a report into typed tables (:class:`Report`), then render HTML, Markdown and CSV.

:func:`collect` composes, re-expands the experiment's grid, aggregates the
store's frame (:mod:`pipeline.report.aggregate`) and projects it
(:mod:`pipeline.projection`); :func:`render` writes the folder. ``asi-report``
(:mod:`pipeline.cli.report`) is :func:`build` plus a line saying where.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from omegaconf import DictConfig

from asi_slowdown.pipeline.configuration.checks import check_report, check_store_path
from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.execution.memory import returning_memory
from asi_slowdown.pipeline.execution.scheduler import progress, scheduler
from asi_slowdown.pipeline.projection.projection import (
    projections,
    scenario_summary,
)
from asi_slowdown.pipeline.report.aggregate import aggregate
from asi_slowdown.pipeline.report.collection import (
    REPORT_METRICS,
    Report,
    focus_budgets,
    focus_table,
    nightly,
    replaced_text,
    sensitivities,
    validation,
)
from asi_slowdown.pipeline.report.render import render
from asi_slowdown.pipeline.report.scope import (
    coverage,
    coverage_hint,
    experiment_grid,
    experiment_grid_from,
    grid_counts,
    grid_scope,
    missing_cells,
    model_overrides,
    preset_points,
    store_presets,
)
from asi_slowdown.pipeline.report.settings import Out, _stderr
from asi_slowdown.pipeline.store import readers as results_store
from asi_slowdown.pipeline.store.frame import Scope
from asi_slowdown.pipeline.store.schema import CUBE_KEYS


def collect(
    overrides: Sequence[str] = (),
    *,
    grid_overrides: Sequence[str] | None = None,
    composer: Composer | None = None,
    err: Out = _stderr,
) -> tuple[Report, DictConfig]:
    """Compose, aggregate and project: everything but the rendering.

    ``grid_overrides`` replaces the experiment's sweep overrides (tests use a
    small grid); by default the grid is the experiment's. Freed memory goes back to
    the system as it runs (:func:`~pipeline.execution.memory.returning_memory`).
    """
    with returning_memory():
        return _collect(overrides, grid_overrides, composer, err)


def _collect(
    overrides: Sequence[str],
    grid_overrides: Sequence[str] | None,
    composer: Composer | None,
    err: Out,
) -> tuple[Report, DictConfig]:
    timings: dict[str, float] = {}
    composer = composer or default_composer()
    cfg = composer.compose(overrides)
    s = check_report(cfg, group_options=composer.group_options)
    check_store_path(cfg.store.path, exists=True)
    stages = list(cfg.roadmap.stages)
    tick = time.perf_counter()
    grid = None
    if grid_overrides is not None:
        grid = experiment_grid_from(grid_overrides, composer)
    elif s.experiment is not None:
        grid = experiment_grid(s.experiment, model_overrides(overrides), composer)
    checked = None  # the store's parts, checked once: by the presets' read or the aggregation
    if grid is not None:
        err(
            f"asi-report: grid {'of the given overrides' if grid_overrides is not None else s.experiment}: "
            f"{len(grid):,} points in {len(grid.profiles)} profiles"
        )
        grid, kept_out = preset_points(grid)
        presets = grid
    else:
        checked = results_store.check_parts(cfg.store.path)
        presets, kept_out = store_presets(cfg, overrides, composer, checked)
    timings["grid_s"] = time.perf_counter() - tick
    if kept_out.points:
        err(f"asi-report: {kept_out.text()}")
    if presets is not None:
        scope = grid_scope(presets)
    else:  # nothing stored at this seed and samples that the presets compose
        scope = Scope(point_ids=pa.array([], pa.string()))
    tick = time.perf_counter()
    with scheduler(cfg.dask, cfg.ray) as info:
        err(
            f"asi-report: aggregating {cfg.store.path} on Dask ({info.name}, {info.workers} workers)"
        )
        with progress(bool(cfg.dask.progress) and info.name != "distributed"):
            aggs = aggregate(cfg.store.path, scope, REPORT_METRICS, checked)
    timings["aggregate_s"] = time.perf_counter() - tick
    scan = aggs.scan
    unreadable = len(scan.unreadable)
    err(
        f"asi-report: {int(aggs.cube['points'].sum()):,} points in scope from {scan.parts} part files"
        + (f" ({unreadable} unreadable, skipped)" if unreadable else "")
        + (f", {scan.duplicates_dropped} duplicates dropped" if scan.duplicates_dropped else "")
    )
    counts = grid_counts(grid) if grid is not None else None
    cover = coverage(counts, aggs.stage_summary)
    missing, examples = missing_cells(grid, aggs.cube) if grid is not None else (0, pd.DataFrame())
    tick = time.perf_counter()
    baseline = str(cfg.baseline.name)
    # the metrics move into the projection column by column (never both whole in memory):
    # the cube keeps only its cells (where focus values snap to)
    projection = projections(aggs.cube, stages, baseline, consume=True)
    aggs.cube = aggs.cube[[*CUBE_KEYS, "points"]]
    scenarios = scenario_summary(projection, stages)
    focus, replaced = focus_table(projection, aggs.cube, cfg, presets, s.focus_file_size, composer)
    if replaced:
        err(f"asi-report: {replaced_text(replaced)}")
    final = stages[-1]
    sensitivity = sensitivities(focus, final, presets, cfg, composer)
    timings["project_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    budget, conditions = focus_budgets(focus, final, presets, cfg, overrides, composer)
    timings["budget_s"] = time.perf_counter() - tick
    report = Report(
        settings=s,
        stages=stages,
        focus_cpu=str(cfg.cpu.name),
        aggregates=aggs,
        coverage=cover,
        projection=projection,
        scenarios=scenarios,
        focus=focus,
        sensitivity=sensitivity,
        grid_points=len(grid) if grid is not None else None,
        missing=missing,
        missing_examples=examples,
        scheduler=f"{info.name} ({info.workers} workers{', ' + info.detail if info.detail else ''})",
        timings=timings,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        budget=budget,
        conditions=conditions,
        baseline=baseline,
        kept_out=kept_out,
        focus_replaced=replaced,
    )
    report.hint = coverage_hint(cover, stages, report.grid_points)
    if report.hint:
        err(f"asi-report: {report.hint}")
    report.validation = validation(report, composer, err)
    nightly(report, err)
    return report, cfg


def build(
    overrides: Sequence[str] = (),
    *,
    grid_overrides: Sequence[str] | None = None,
    composer: Composer | None = None,
    err: Out = _stderr,
) -> tuple[Path, Report]:
    """Collect and render a report; returns ``index.html``'s path and the :class:`Report`."""
    report, _ = collect(overrides, grid_overrides=grid_overrides, composer=composer, err=err)
    tick = time.perf_counter()
    index = render(report)
    report.timings["render_s"] = time.perf_counter() - tick
    return index, report


def announce(index: Path, report: Report) -> None:
    """What ``asi-report`` prints once the report is written."""
    flagged = 0 if report.comparison is None else int(report.comparison["moved"].sum())
    if flagged:
        print(
            f"asi-report: {flagged} projection(s) moved since {report.previous_night}: see the report"
        )
    print(f"asi-report: report in {index}")


__all__ = ["Report", "announce", "build", "collect", "render"]
