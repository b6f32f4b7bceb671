"""Aggregate the results store on Dask: the store's frame reduced to summaries.

The store hands over its rows in scope as a lazy Dask DataFrame, one row per
point (:func:`pipeline.store.frame.store_frame`: checked parts, filters pushed
down, duplicates dropped); here it is reduced to the two small tables the
projections and the report read (:class:`Aggregates`): a summary per
(workload, CPU profile, stage) and the cube of mean metrics per
:data:`~pipeline.store.schema.CUBE_KEYS` cell, in one ``dask.compute``: each partition is
read twice, each read projected to its reduction's columns (the summary's few, the
cube's), which holds less at once than one read of both (issue 22).

It runs on the current Dask scheduler, chosen in the ``dask`` config section
(:func:`pipeline.execution.scheduler.scheduler`): ``threads`` (default), ``ray``
(Dask-on-Ray) or the address of a Dask distributed scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from asi_slowdown.pipeline.projection.projection import CONFIDENCE_COLUMNS, VS_DEFAULT_QUANTILES
from asi_slowdown.pipeline.projection.verdicts import TARGET, THRESHOLD
from asi_slowdown.pipeline.store.frame import Checked, Scope, StoreScan, pandas_frame, store_frame
from asi_slowdown.pipeline.store.schema import (
    CUBE_KEYS,
    HEADLINE_METRICS,
    LABEL_COLUMNS,
    METRIC_COLUMNS,
)

CUBE_METRICS: tuple[str, ...] = tuple(
    c for c in METRIC_COLUMNS if c not in ("t_asi_mean", "throughput_loss_mean")
)
"""Everything the report draws: quantiles, native time [ns/op], exits [1/op] by source and
[1/s] by the prototype's reasons, mean extra time [ns/op] by cost component and exit source,
the confidence (:data:`~pipeline.projection.projection.CONFIDENCE_COLUMNS`) and the comparison
with the kernel's default mitigations
(:data:`~pipeline.projection.projection.VS_DEFAULT_QUANTILES`, ``t_default_mean``...): every
store metric but the two means nothing reads."""


# --------------------------------------------------------------------------- aggregations
def _with_verdict_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """Add 0/1 columns: the point's slowdown p50 meets the target / is under the threshold."""
    return frame.assign(
        meets_target=(frame["slowdown_p50"] < TARGET).astype(np.float64),
        under_threshold=(frame["slowdown_p50"] < THRESHOLD).astype(np.float64),
    )


COUNT = ("slowdown_p50", "count")
"""The aggregation that counts a group's points (every stored point has a slowdown)."""

STAGE_SUMMARY_AGGS: dict[str, list[str]] = {
    "slowdown_p50": ["count", "mean", "min", "max"],
    "slowdown_p95": ["max"],
    "throughput_loss_p50": ["mean", "max"],
    "meets_target": ["mean"],
    "under_threshold": ["mean"],
    **{c: ["mean", "min"] for c in CONFIDENCE_COLUMNS},
    **{c: ["mean", "max"] for c in VS_DEFAULT_QUANTILES if c.endswith("_p50")},
}
"""Per (workload, CPU profile, stage): points, slowdown p50 over the points (mean, min,
max), worst p95, throughput loss, share of points meeting the target / under the threshold
at the median, mean and lowest probability of meeting them, and the median slowdown against
the kernel's default mitigations (mean, worst)."""


def cube_aggs(metrics: Sequence[str]) -> dict[str, list[str]]:
    """The mean of each metric per cube cell, plus the cell's point count."""
    return {"slowdown_p50": ["count"]} | {
        m: [*(["count"] if m == "slowdown_p50" else []), "mean"] for m in metrics
    }


def _flatten(frame: pd.DataFrame, means_by_name: bool = False) -> pd.DataFrame:
    """Flat column names: ``points`` for :data:`COUNT`, else ``<metric>_<stat>``.

    With ``means_by_name`` a mean keeps the metric's own name (the cube).
    """
    names = []
    for col in frame.columns.to_flat_index():
        if tuple(col) == COUNT:
            names.append("points")
        elif means_by_name and col[1] == "mean":
            names.append(col[0])
        else:
            names.append(f"{col[0]}_{col[1]}")
    frame = frame.copy()
    frame.columns = names
    frame = frame.reset_index()
    for name in LABEL_COLUMNS:  # categoricals back to plain strings for the callers
        if name in frame.columns:
            frame[name] = frame[name].astype(str)
    frame["points"] = frame["points"].astype(np.int64)
    return frame


def stage_summary(frame):
    """Per (workload, cpu, stage) summary (:data:`STAGE_SUMMARY_AGGS`); Dask or pandas, unflattened."""
    lazy = hasattr(frame, "map_partitions")  # a Dask frame; pandas has no such method
    flagged = frame.map_partitions(_with_verdict_flags) if lazy else _with_verdict_flags(frame)
    return flagged.groupby(list(LABEL_COLUMNS), observed=True).agg(STAGE_SUMMARY_AGGS)


def cube(frame, metrics: Sequence[str] = CUBE_METRICS):
    """Mean of ``metrics`` per :data:`CUBE_KEYS` cell and its point count; Dask or pandas, unflattened."""
    return frame.groupby(list(CUBE_KEYS), observed=True).agg(cube_aggs(metrics))


def cube_of(rows: pd.DataFrame, metrics: Sequence[str] = CUBE_METRICS) -> pd.DataFrame:
    """:func:`cube` of gathered rows, flattened and sorted as :class:`Aggregates` holds it.

    A grid's or the presets' scope (one seed and sample count, what-ifs kept out) holds one
    point per cell: the cube is then the rows themselves with ``points`` = 1, built without
    a groupby (which copies every metric column several times: at the nightly preset the
    cube has as many rows as the store has points). Cells holding several points (two
    seeds) are averaged by :func:`cube` as before.
    """
    keys = list(CUBE_KEYS)
    if rows.duplicated(keys).any():
        return _flatten(cube(rows, metrics), means_by_name=True).sort_values(
            keys, ignore_index=True
        )
    names = list(dict.fromkeys(["slowdown_p50", *metrics]))
    cells = rows[[*keys, *names]]
    cells.insert(len(keys), "points", np.ones(len(cells), dtype=np.int64))
    for name in LABEL_COLUMNS:  # categoricals back to plain strings, as _flatten does
        cells[name] = cells[name].astype(str)
    cells = cells.sort_values(keys, ignore_index=True)
    return cells.astype({n: np.float64 for n in names})


@dataclass
class Aggregates:
    """The store reduced for projections and reports (small pandas frames).

    ``stage_summary``: one row per (workload, cpu, mitigations) with ``points``
    and the :data:`STAGE_SUMMARY_AGGS` statistics named ``<metric>_<stat>``.
    ``cube``: one row per :data:`CUBE_KEYS` cell with ``points`` and the mean
    of each metric under the metric's own name.
    """

    stage_summary: pd.DataFrame
    cube: pd.DataFrame
    scan: StoreScan


def _finish(summary, cells, scan: StoreScan, start: float) -> Aggregates:
    summary = _flatten(summary).sort_values(list(LABEL_COLUMNS), ignore_index=True)
    cells = _flatten(cells, means_by_name=True).sort_values(list(CUBE_KEYS), ignore_index=True)
    scan.seconds = time.perf_counter() - start
    return Aggregates(summary, cells, scan)


def _needed(metrics: Sequence[str]) -> list[str]:
    summarised = [k for k in STAGE_SUMMARY_AGGS if k in METRIC_COLUMNS]
    return list(dict.fromkeys([*CUBE_KEYS, *HEADLINE_METRICS, *summarised, *metrics]))


def piece(rows: pd.DataFrame) -> pa.Table:
    """One partition's cube columns as Arrow, labels as plain strings (a Dask task's result).

    Each numeric column is copied into a buffer of its own: Arrow would otherwise share
    the partition's pandas block, which stays whole until its last column is gone. So
    what the driver gathers is one table per partition whose columns
    :func:`cube_of_tables` frees one at a time as it moves them into the cube.
    """
    arrays, names = [], []
    for name in rows.columns:
        column = rows[name]
        if name in LABEL_COLUMNS:
            array = pa.array(column, from_pandas=True)
            if not pa.types.is_string(array.type):
                array = array.cast(pa.string())
        else:
            array = pa.array(column.to_numpy(copy=True))
        arrays.append(array)
        names.append(name)
    return pa.table(arrays, names=names)


def cube_of_tables(tables: list[pa.Table], metrics: Sequence[str] = CUBE_METRICS) -> pd.DataFrame:
    """:func:`cube_of` of the partitions' Arrow tables (:func:`piece`), column by column.

    ``tables`` is emptied: the cube takes its columns over.

    The same frame as :func:`cube_of` of the gathered rows, built without ever holding
    the rows twice: the cells are ordered once from the key columns, and each column is
    taken in that order, dropped from the partitions' tables, and handed to pandas
    without a copy (one block per column). At the nightly preset the cube holds every
    point: the gathered frame, its column selection, its sorted copy and a consolidated
    copy each were the size of the cube (issue 22).
    """
    keys = list(CUBE_KEYS)
    names = list(dict.fromkeys(["slowdown_p50", *metrics]))
    table = pa.concat_tables(tables) if tables else None
    tables.clear()  # the concatenation holds the buffers now, and drops them column by column
    if table is None or table.num_rows == 0:
        return cube_of(_empty_rows(table, keys, names), metrics)
    if table.select(keys).to_pandas().duplicated(keys).any():  # several points in a cell
        return cube_of(table.to_pandas(), metrics)
    order = pa.compute.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    columns: dict[str, pa.ChunkedArray] = {}
    for name in [*keys, *names]:
        columns[name] = table.column(name).take(order)
        table = table.drop_columns([name])  # its buffers go once every partition's copy is gone
        if name == keys[-1]:
            columns["points"] = pa.chunked_array([np.ones(len(order), dtype=np.int64)])
    del table
    sorted_ = pa.table(columns)
    columns.clear()
    # one block per column, handed over without a copy: the report's projection moves
    # them out one at a time (pipeline.projection.projection.projections, consume=True)
    cells = sorted_.to_pandas(split_blocks=True, self_destruct=True)
    del sorted_
    retype = {n: np.float64 for n in names if cells[n].dtype != np.float64}
    return cells.astype(retype) if retype else cells


def _empty_rows(table: pa.Table | None, keys: list[str], names: list[str]) -> pd.DataFrame:
    if table is not None:
        return table.to_pandas()
    from asi_slowdown.pipeline.store.schema import STORE_SCHEMA

    return STORE_SCHEMA.empty_table().select([*keys, *names]).to_pandas()


def gathers_cells(scope: Scope) -> bool:
    """Whether :func:`aggregate` gathers the cube's columns (:func:`cube_of_tables`) rather
    than reducing the cube on Dask.

    A scope that names a grid's points (``asi-report``'s, :func:`~pipeline.report.scope.grid_scope`)
    or one seed and sample count holds one point per cube cell, except for what-ifs: the
    cube is then as large as the rows, and a groupby would copy it several times over
    (issue 22), so its columns are gathered and ordered instead. Any other scope (a whole
    store, swept at several seeds) may average dozens of points per cell: gathering every
    row into the driver and grouping them there on one core ran at half the speed of a
    plain Dask read at 10^7 rows, so Dask reduces the cube in parallel, as it does the
    stage summary."""
    return scope.point_ids is not None or (scope.seed is not None and scope.samples is not None)


def aggregate(
    store: Path | str,
    scope: Scope = Scope(),
    metrics: Sequence[str] = CUBE_METRICS,
    checked: Checked | None = None,
    gather: bool | None = None,
) -> Aggregates:
    """Read, deduplicate and reduce the store in scope on the current Dask scheduler.

    Both reductions run in one ``dask.compute``: the stage summary reduced on Dask from
    its own columns; the cube's columns gathered as one Arrow table per partition
    (:func:`piece`) and ordered into the cube column by column (:func:`cube_of_tables`)
    when the scope holds one point per cell, else the cube reduced on Dask too
    (:func:`gathers_cells`; ``gather`` overrides it for a caller who knows the store's
    cells). Both give the same cube.
    ``checked``: the store's parts as checked moments ago by the caller
    (:func:`~pipeline.store.frame.store_frame`). See :class:`Aggregates` for
    what comes back.
    """
    import dask

    start = time.perf_counter()
    wanted = list(dict.fromkeys([*CUBE_KEYS, *metrics]))
    summarised = list(
        dict.fromkeys([*LABEL_COLUMNS, *(k for k in STAGE_SUMMARY_AGGS if k in METRIC_COLUMNS)])
    )
    gather = gathers_cells(scope) if gather is None else gather
    for attempt in range(3):
        frame, scan = store_frame(store, _needed(metrics), scope, checked if not attempt else None)
        try:
            reduced = stage_summary(frame[summarised]).to_delayed()
            if gather:
                cells = [dask.delayed(piece)(p) for p in frame[wanted].to_delayed()]
            else:
                cells = cube(frame[wanted], metrics).to_delayed()
            *summaries, cells = dask.compute(*reduced, cells)
            summary = pd.concat(summaries) if len(summaries) > 1 else summaries[0]
            break
        except FileNotFoundError:  # a part compacted away while being read: list again
            if attempt == 2:
                raise
    summary = _flatten(summary).sort_values(list(LABEL_COLUMNS), ignore_index=True)
    if gather:
        the_cube = cube_of_tables(cells, metrics)
    else:
        reduced_cube = pd.concat(cells) if len(cells) > 1 else cells[0]
        the_cube = _flatten(reduced_cube, means_by_name=True).sort_values(
            list(CUBE_KEYS), ignore_index=True
        )
    out = Aggregates(summary, the_cube, scan)
    scan.seconds = time.perf_counter() - start
    if scan.rows_in_scope < 0:
        scan.rows_in_scope = int(out.stage_summary["points"].sum())
    return out


def aggregate_pandas(
    store: Path | str, scope: Scope = Scope(), metrics: Sequence[str] = CUBE_METRICS
) -> Aggregates:
    """:func:`aggregate` in plain pandas, one partition after another, no Dask.

    The reference the tests compare :func:`aggregate` with, and the benchmark's
    single-threaded baseline: the same reads, the same dedup and the same
    reductions (:func:`~pipeline.store.frame.pandas_frame`), so the two differ
    only in how the work is scheduled.
    """
    start = time.perf_counter()
    frame, scan = pandas_frame(store, _needed(metrics), scope)
    return _finish(stage_summary(frame), cube(frame, metrics), scan, start)
