"""Small real results stores for the aggregation, report and browser tests (no Ray).

Points are evaluated in-process with the sweep's own chunk code
(:func:`pipeline.sweep.chunks.evaluate_chunk`) and committed with the store's writer,
so the stores are exactly what ``asi-sweep`` writes, minus the fan-out.
:func:`nightly_stub` is the least :class:`~pipeline.report.collection.Report` that
nightly mode's recording and comparison run on, without a store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from asi_slowdown.pipeline.configuration.checks import ReportSettings
from asi_slowdown.pipeline.report.collection import Report
from asi_slowdown.pipeline.report.scope import experiment_grid_from
from asi_slowdown.pipeline.store.parts import write_part
from asi_slowdown.pipeline.sweep.chunks import evaluate_chunk, iter_chunks
from asi_slowdown.pipeline.sweep.grid import Grid

SMALL_GRID = (
    "workload=fio_randread_tmpfs,fork_exec",
    "cpu=sapphire_rapids",
    "mitigations=glob(*)",
    "cpus=1,4,16",
    "workload.file_size=64M,1G",
    "ephmap.slots=1,2",
    "samples=64",
)
"""2 workloads x 7 stages x 3 CPU counts x 2 file sizes x 2 slot counts = 168 points."""

SMALL_SAMPLES = 64


def write_store(
    store: Path,
    overrides=SMALL_GRID,
    *,
    keep: Callable[[int], bool] = lambda chunk: True,
    run_id: str = "run0",
    chunk_rows: int = 12,
) -> Grid:
    """Expand ``overrides``, evaluate each chunk and commit it as a part, if ``keep(chunk index)``."""
    grid = experiment_grid_from(list(overrides))
    costs: dict[int, dict] = {}
    seq = 0
    for index, chunk in enumerate(iter_chunks(grid.points, chunk_rows)):
        if not keep(index):
            continue
        profile = grid.profiles[chunk.profile]
        draws = costs.setdefault(chunk.profile, profile.costs())
        write_part(store, evaluate_chunk(chunk.points, profile, draws), run_id, seq)
        seq += 1
    return grid


def report_overrides(tmp_path: Path, store: Path, *extra: str) -> list[str]:
    """asi-report overrides that keep everything under ``tmp_path``."""
    return [
        f"store.path={store}",
        f"report.dir={tmp_path / 'report'}",
        f"report.history={tmp_path / 'history'}",
        f"samples={SMALL_SAMPLES}",
        "dask.progress=false",
        *extra,
    ]


def nightly_stub(history: Path, night: str, focus: pd.DataFrame) -> tuple[Report, list[str]]:
    """A :class:`Report` with just what :func:`nightly` reads (the rest is not needed there)."""
    settings = ReportSettings(
        mode="nightly",
        experiment=None,
        folder=history / "report",
        night=night,
        threshold=0.005,
        focus_file_size=None,
        history=history,
    )
    unused = pd.DataFrame()
    report = Report(
        settings=settings,
        stages=sorted(set(focus["stage"])),
        focus_cpu=str(focus["cpu"].iloc[0]),
        aggregates=None,
        coverage=pd.DataFrame({"stored_points": [1]}),
        projection=unused,
        scenarios=unused,
        focus=focus,
        sensitivity=unused,
        grid_points=None,
        missing=0,
        missing_examples=unused,
        scheduler="none",
    )
    return report, []
