"""Aggregate the results store on Dask: lazy filtered reads, one row per point, summaries.

The store (:mod:`pipeline.store.parts`) is a directory of Parquet part files. Here
it becomes a lazy Dask DataFrame with one partition per group of consecutive
part files (about :data:`PARTITION_ROWS` rows), each read with pyarrow's
filter pushdown (row-group statistics, then row filtering) and, for a report
over an experiment, restricted to that grid's ``point_id`` set.

Duplicates (two sweeps that wrote the same point) are resolved by
:func:`pipeline.store.dedupe`, the store's one dedup rule, applied only to the
rows whose id occurs more than once. A light survey pass reads the ids alone
and turns them into 64-bit keys; rows whose key repeats are candidates, and
only their dedup columns (id, commit time, run) are read and deduplicated.
The losers are then dropped by position in the main pass, which never reads
the ids. A key collision only makes a row a candidate, and candidates are
deduplicated on the full ``point_id``, so the result is exact.

The scheduler is chosen in the ``dask`` config section
(:func:`pipeline.report.schedulers.scheduler`): ``threads`` (default), ``ray``
(Dask-on-Ray) or the address of a Dask distributed scheduler.

Partial stores (a sweep that failed halfway) aggregate like any other: a
part file is the unit of commit, so what is there is whole; parts that fail
their digest check (a truncated or corrupted file) are moved to the store's
``_quarantine/``, skipped and reported, never aggregated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.projection.projection import CONFIDENCE_COLUMNS, VS_DEFAULT_QUANTILES
from pipeline.projection.verdicts import TARGET, THRESHOLD
from pipeline.report.schedulers import (  # noqa: F401  (the aggregation's public names)
    LineProgress,
    SchedulerInfo,
    check_scheduler,
    progress,
    scheduler,
)
from pipeline.store import readers as results_store
from pipeline.store.dedup import has_key, id_keys, repeated_keys
from pipeline.store.readers import is_unique
from pipeline.store.schema import (
    CUBE_KEYS,
    DEDUP_COLUMNS,
    HEADLINE_METRICS,
    LABEL_COLUMNS,
    METRIC_COLUMNS,
    STORE_SCHEMA,
)

if TYPE_CHECKING:
    import dask.dataframe as dd

# Dask is imported inside the functions that run it: ``dask.dataframe`` takes about a
# second to import, and asi-answer only needs :func:`lookup`.


CUBE_METRICS: tuple[str, ...] = tuple(
    c for c in METRIC_COLUMNS if c not in ("t_asi_mean", "throughput_loss_mean")
)
"""Everything the report draws: quantiles, native time [ns/op], exits [1/op] by source and
[1/s] by the prototype's reasons, mean extra time [ns/op] by cost component and exit source,
the confidence (:data:`~pipeline.projection.projection.CONFIDENCE_COLUMNS`) and the comparison
with the kernel's default mitigations
(:data:`~pipeline.projection.projection.VS_DEFAULT_QUANTILES`, ``t_default_mean``...): every
store metric but the two means nothing reads."""


# --------------------------------------------------------------------------- scope
@dataclass(frozen=True)
class Scope:
    """Which rows of the store an aggregation reads.

    Empty tuples and ``None`` mean "any". ``equals`` pins point parameters
    (``{"cpus": 1}``). ``point_ids``, when given, keeps only those points
    (an experiment's grid): it is applied after the pushed-down filters.
    """

    workloads: tuple[str, ...] = ()
    cpu_profiles: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    seed: int | None = None
    samples: int | None = None
    equals: Mapping[str, float] = field(default_factory=dict)
    point_ids: pa.Array | None = None

    def filters(self) -> list[tuple] | None:
        """The same filter as :meth:`expression`, in the list form ``dd.read_parquet`` takes."""
        terms = [
            (column, "in", list(values))
            for column, values in (
                ("workload", self.workloads),
                ("cpu", self.cpu_profiles),
                ("mitigations", self.stages),
            )
            if values
        ]
        terms += [
            (c, "==", v)
            for c, v in (("seed", self.seed), ("samples", self.samples))
            if v is not None
        ]
        terms += [(k, "==", v) for k, v in self.equals.items()]
        return terms or None

    def expression(self) -> pc.Expression | None:
        """The pyarrow filter pushed down to each part file (labels, seed, samples, ``equals``)."""
        terms = []
        for column, values in (
            ("workload", self.workloads),
            ("cpu", self.cpu_profiles),
            ("mitigations", self.stages),
        ):
            if values:
                terms.append(pc.field(column).isin(list(values)))
        for column, value in (("seed", self.seed), ("samples", self.samples)):
            if value is not None:
                terms.append(pc.field(column) == value)
        terms.extend(pc.field(k) == v for k, v in self.equals.items())
        if not terms:
            return None
        expression = terms[0]
        for term in terms[1:]:
            expression = expression & term
        return expression


# --------------------------------------------------------------------------- reading
_PARQUET = ds.ParquetFileFormat(
    read_options=ds.ParquetReadOptions(dictionary_columns=list(LABEL_COLUMNS))
)


PARTITION_ROWS = 1_000_000
"""Rows one Dask partition reads: consecutive part files are grouped up to this many, so
a store of many small parts does not pay Dask's per-task overhead for each (a sweep
commits a part every ``store.part_rows`` rows or ``store.flush_seconds``)."""


def readable_parts(store: Path | str) -> tuple[list[Path], list[Path]]:
    """The store's committed part files that pass their check, and those that do not.

    :func:`pipeline.store.check_parts` hashes every part against the digest in
    its name before Dask plans on it, so a truncated or bit-flipped file is
    never aggregated: it is moved to ``<store>/_quarantine/`` (as every store
    reader does), its points are missing from the aggregation and it is
    reported (``StoreScan.unreadable``); the next sweep computes them again.
    """
    return results_store.check_parts(store)


def partitions(parts: Sequence[Path], rows: int = PARTITION_ROWS) -> list[tuple[str, ...]]:
    """Consecutive part files grouped into partitions of about ``rows`` rows (footer counts)."""
    groups: list[tuple[str, ...]] = []
    current: list[str] = []
    size = 0
    for part in parts:
        n = pq.read_metadata(part).num_rows
        if current and size + n > rows:
            groups.append(tuple(current))
            current, size = [], 0
        current.append(str(part))
        size += n
    if current:
        groups.append(tuple(current))
    return groups


@dataclass(frozen=True)
class PartRead:
    """How every partition of one scan reads its part files.

    ``drop`` maps a partition's index to the positions (in that partition's
    scan order) of the rows that lost the dedup (:func:`resolve_duplicates`);
    ``rows`` to the row count the survey saw, checked before dropping.
    """

    names: tuple[str, ...]
    expression: pc.Expression | None = None
    point_ids: pa.Array | None = None
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    drop: Mapping[int, np.ndarray] = field(default_factory=dict)
    rows: Mapping[int, int] = field(default_factory=dict)


def read_part_table(partition: tuple[int, Sequence[str]], how: PartRead) -> pa.Table:
    """The rows in scope of one partition's part files, columns ``how.names``, as Arrow.

    Rows come in a fixed order (files in order, each file's row groups in
    order, filters keep order), the same in every pass over the partition:
    the survey's row positions address the same rows here.
    """
    index, paths = partition
    need_ids = how.point_ids is not None
    names = list(dict.fromkeys([*how.names, *(["point_id"] if need_ids else [])]))
    dataset = ds.dataset(list(paths), format=_PARQUET)
    table = dataset.to_table(columns=names, filter=how.expression)
    if need_ids:
        table = table.filter(pc.is_in(table.column("point_id"), value_set=how.point_ids))
    losers = how.drop.get(index)
    if losers is not None and len(losers):
        if table.num_rows != how.rows[index]:
            raise RuntimeError(
                f"part files changed while being aggregated: {paths[0]} and others "
                f"({table.num_rows} rows, {how.rows[index]} when surveyed)"
            )
        keep = np.ones(table.num_rows, dtype=bool)
        keep[losers] = False
        table = table.filter(pa.array(keep))
    return table.select(list(how.names))


def to_frame(table: pa.Table, categories: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Arrow rows as pandas; ``categories`` columns become categoricals with those categories."""
    frame = table.drop_columns([c for c in categories if c in table.column_names]).to_pandas()
    for position, name in enumerate(table.column_names):
        if name not in categories:
            continue
        dtype = pd.CategoricalDtype(list(categories[name]))
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.unify_dictionaries()
            array = column.combine_chunks() if column.num_chunks else None
        else:
            array = pc.dictionary_encode(column).combine_chunks() if column.num_chunks else None
        if array is None or len(array) == 0:
            codes = np.empty(0, dtype=np.int32)
        else:
            lookup = dtype.categories.get_indexer(array.dictionary.to_pylist())
            codes = lookup[array.indices.to_numpy(zero_copy_only=False)]
        frame.insert(position, name, pd.Categorical.from_codes(codes, dtype=dtype))
    return frame


def read_part(partition: tuple[int, Sequence[str]], how: PartRead) -> pd.DataFrame:
    """One Dask partition: :func:`read_part_table` as pandas (labels as categoricals)."""
    return to_frame(read_part_table(partition, how), how.categories)


def survey_part(
    partition: tuple[int, Sequence[str]], how: PartRead
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """The light pass over one partition: id keys of its rows in scope, and their label values."""
    table = read_part_table(partition, replace(how, names=("point_id", *LABEL_COLUMNS)))
    labels = {}
    for name in LABEL_COLUMNS:
        column = table.column(name)
        labels[name] = pc.unique(column.cast(pa.string())).to_pylist() if len(column) else []
    return id_keys(table.column("point_id")), labels


def candidate_rows(
    partition: tuple[int, Sequence[str]], how: PartRead, positions: np.ndarray
) -> pa.Table:
    """The dedup columns of a partition's rows at ``positions``, tagged with where they are."""
    table = read_part_table(partition, replace(how, names=DEDUP_COLUMNS)).take(pa.array(positions))
    where = (np.int64(partition[0]) << 32) | positions.astype(np.int64)
    return table.append_column("_where", pa.array(where))


def resolve_duplicates(candidates: Sequence[pa.Table]) -> dict[int, np.ndarray]:
    """Apply :func:`pipeline.store.dedupe` to the candidate rows; the losers' positions per partition."""
    rows = pa.concat_tables(candidates)
    kept = results_store.dedupe(rows).column("_where").to_numpy()
    losers = np.setdiff1d(rows.column("_where").to_numpy(), kept)
    by_partition: dict[int, list[int]] = {}
    for where in losers.tolist():
        by_partition.setdefault(where >> 32, []).append(where & 0xFFFFFFFF)
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in by_partition.items()}


def plan(
    names: Sequence[str], scope: Scope, surveys: Sequence[tuple[np.ndarray, dict]]
) -> tuple[PartRead, dict[int, np.ndarray]]:
    """The :class:`PartRead` of a scan from its partitions' surveys, and the dedup candidates.

    Returns the read (no ``drop`` yet) and, per partition holding some, the
    positions of rows whose key repeats (candidates for the dedup).
    """
    categories = {
        name: tuple(sorted({v for _, labels in surveys for v in labels[name]}))
        for name in LABEL_COLUMNS
        if name in names
    }
    keys = [k for k, _ in surveys]
    repeated = repeated_keys(keys)
    candidates = {}
    if len(repeated):
        for index, partition_keys in enumerate(keys):
            hits = np.flatnonzero(has_key(partition_keys, repeated))
            if len(hits):
                candidates[index] = hits
    how = PartRead(
        tuple(names),
        scope.expression(),
        scope.point_ids,
        categories,
        rows={i: len(k) for i, k in enumerate(keys)},
    )
    return how, candidates


@dataclass
class StoreScan:
    """What a read of the store found."""

    store: str
    parts: int
    unreadable: list[str]
    rows_in_scope: int = 0
    duplicates_dropped: int = 0
    seconds: float = 0.0
    plain: bool = False
    """True when the store's index recorded the parts duplicate-free: no dedup pass ran."""


def meta_frame(how: PartRead) -> pd.DataFrame:
    """A zero-row frame with the partitions' dtypes (Dask's ``meta``)."""
    table = STORE_SCHEMA.empty_table().select(list(how.names))
    return to_frame(table, how.categories)


def _check_columns(columns: Sequence[str]) -> None:
    unknown = [c for c in columns if c not in STORE_SCHEMA.names]
    if unknown:
        raise ValueError(f"not store columns: {', '.join(unknown)}")


def _begin(store: Path | str, columns: Sequence[str], scope: Scope, checked=None):
    _check_columns(columns)
    parts, unreadable = checked or readable_parts(store)
    scan = StoreScan(str(store), len(parts), [p.name for p in unreadable])
    survey = PartRead(("point_id",), scope.expression(), scope.point_ids)
    return list(enumerate(partitions(parts))), scan, survey


def _dropped(drop: Mapping[int, np.ndarray]) -> int:
    return int(sum(len(v) for v in drop.values()))


def store_frame(
    store: Path | str, columns: Sequence[str], scope: Scope = Scope()
) -> tuple[dd.DataFrame, StoreScan]:
    """The store's rows in ``scope`` as a lazy Dask DataFrame, one row per ``point_id``.

    Two light passes run at once on the current Dask scheduler: the survey
    (ids as 64-bit keys, and label values) and, only for partitions holding a
    repeated key, a read of those rows' dedup columns, which
    :func:`pipeline.store.dedupe` resolves. The returned frame is lazy, one
    partition per group of part files; it drops the losing rows by position
    and never reads ``point_id`` unless it is asked for (or ``scope`` has ids).

    Parameters
    ----------
    store : path
        The results store directory.
    columns : sequence of str
        Store columns wanted. ``workload``, ``cpu`` and ``mitigations`` come
        as pandas categoricals.
    scope : Scope
        Filters pushed down to the part files, and an optional id set.
    """
    import dask
    import dask.dataframe as dd

    start = time.perf_counter()
    _check_columns(columns)
    checked = readable_parts(store)
    if checked[0] and is_unique(Path(store), checked[0]):
        scan = StoreScan(str(store), len(checked[0]), [p.name for p in checked[1]])
        scan.rows_in_scope = -1  # counted by the aggregation itself
        scan.plain = True
        scan.seconds = time.perf_counter() - start
        return plain_frame(checked[0], columns, scope), scan
    partitions_, scan, survey = _begin(store, columns, scope, checked)
    surveys = dask.compute(*(dask.delayed(survey_part, pure=True)(p, survey) for p in partitions_))
    how, candidates = plan(list(dict.fromkeys(columns)), scope, surveys)
    scan.rows_in_scope = sum(how.rows.values())
    if candidates:
        tables = dask.compute(
            *(
                dask.delayed(candidate_rows, pure=True)(partitions_[i], how, positions)
                for i, positions in candidates.items()
            )
        )
        how = replace(how, drop=resolve_duplicates(tables))
        scan.duplicates_dropped = _dropped(how.drop)
    meta = meta_frame(how)
    scan.seconds = time.perf_counter() - start
    if not partitions_:
        return dd.from_pandas(meta, npartitions=1), scan
    return dd.from_map(read_part, partitions_, args=(how,), meta=meta, label="read-store"), scan


def _in_ids(frame: pd.DataFrame, ids: pa.Array, names: Sequence[str]) -> pd.DataFrame:
    return frame.loc[frame["point_id"].isin(ids.to_pandas()).to_numpy(), list(names)]


def plain_frame(parts: Sequence[Path], columns: Sequence[str], scope: Scope) -> dd.DataFrame:
    """A store whose parts are duplicate-free, as a filtered ``dd.read_parquet``: no dedup work.

    What :func:`store_frame` returns when the store's index records every
    checked part as left duplicate-free by the last compaction.
    """
    import dask.dataframe as dd

    names = list(dict.fromkeys(columns))
    read = names if scope.point_ids is None else list(dict.fromkeys([*names, "point_id"]))
    frame = dd.read_parquet([str(p) for p in parts], columns=read, filters=scope.filters())
    if scope.point_ids is not None:
        frame = frame.map_partitions(_in_ids, scope.point_ids, names, meta=frame._meta[names])
    return frame


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


def aggregate(
    store: Path | str, scope: Scope = Scope(), metrics: Sequence[str] = CUBE_METRICS
) -> Aggregates:
    """Read, deduplicate and reduce the store in scope on the current Dask scheduler.

    Both reductions share one read of each part file (one ``dask.compute``).
    See :class:`Aggregates` for what comes back.
    """
    import dask

    start = time.perf_counter()
    wanted = list(dict.fromkeys([*CUBE_KEYS, *metrics]))
    for attempt in range(3):
        frame, scan = store_frame(store, _needed(metrics), scope)
        try:
            # one read of each part: the stage summary reduced on Dask, the cube's columns
            # gathered once (not reduced to partial sums and counts per column and partition)
            summary, rows = dask.compute(stage_summary(frame), frame[wanted])
            break
        except FileNotFoundError:  # a part compacted away while being read: list again
            if attempt == 2:
                raise
    summary = _flatten(summary).sort_values(list(LABEL_COLUMNS), ignore_index=True)
    out = Aggregates(summary, cube_of(rows, metrics), scan)
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
    reductions, so the two differ only in how the work is scheduled.
    """
    start = time.perf_counter()
    partitions_, scan, survey = _begin(store, _needed(metrics), scope)
    surveys = [survey_part(p, survey) for p in partitions_]
    how, candidates = plan(_needed(metrics), scope, surveys)
    scan.rows_in_scope = sum(how.rows.values())
    if candidates:
        tables = [candidate_rows(partitions_[i], how, pos) for i, pos in candidates.items()]
        how = replace(how, drop=resolve_duplicates(tables))
        scan.duplicates_dropped = _dropped(how.drop)
    frames = [read_part(p, how) for p in partitions_]
    frame = pd.concat(frames, ignore_index=True) if frames else meta_frame(how)
    return _finish(stage_summary(frame), cube(frame, metrics), scan, start)
