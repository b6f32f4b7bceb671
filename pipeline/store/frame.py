"""The store as a frame: lazy filtered reads of its parts, one row per point, on Dask.

What the report aggregates (:func:`pipeline.report.aggregate.aggregate`). The
store's checked parts (:func:`~pipeline.store.readers.check_parts`: a part that
fails its digest is quarantined, skipped and reported in :class:`StoreScan`,
never read) become a lazy Dask DataFrame with one partition per group of
consecutive part files (about :data:`PARTITION_ROWS` rows), each read with
pyarrow's filter pushdown (row-group statistics, then row filtering) and,
for an experiment's grid, restricted to its ``point_id`` set (:class:`Scope`).

Duplicates (two sweeps that wrote the same point) are resolved by the store's
position dedup (:mod:`pipeline.store.dedup`), applied only to the rows whose
id occurs more than once: a light survey pass reads the ids alone and turns
them into 64-bit keys; rows whose key repeats are candidates, and only their
dedup columns are read and deduplicated. The losers are then dropped by
position in the main pass, which never reads the ids. A store whose index
records every part duplicate-free (the last compaction's) skips all of it: a
plain filtered read (:func:`plain_frame`). :func:`pandas_frame` does the same
reads in plain pandas, one partition after another (the tests' reference).

Partial stores (a sweep that failed halfway) read like any other: a part
file is the unit of commit, so what is there is whole.
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

from asi_slowdown.pipeline.store.dedup import candidates, id_keys, losers, tagged
from asi_slowdown.pipeline.store.readers import Checked, check_columns, check_parts, is_unique
from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS, LABEL_COLUMNS, STORE_SCHEMA

if TYPE_CHECKING:
    import dask.dataframe as dd

# Dask is imported inside the functions that run it: ``dask.dataframe`` takes about a
# second to import, and asi-answer only reads the store by id (readers.lookup).


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


PARTITION_ROWS = 100_000
"""Rows one Dask partition reads: consecutive part files are grouped up to this many, so
a store of many small parts does not pay Dask's per-task overhead for each (a sweep
commits a part every ``store.part_rows`` rows or ``store.flush_seconds``). A partition's
read holds a few copies of its rows at once, so it is kept small against the store (a
sweep's part of 100,000 rows is one partition): at 10^6 rows a partition held the whole
nightly store several times over (issue 22)."""


def partitions(parts: Sequence[Path], rows: int | None = None) -> list[tuple[str, ...]]:
    """Consecutive part files grouped into partitions of about ``rows`` rows (footer counts;
    default :data:`PARTITION_ROWS`)."""
    rows = PARTITION_ROWS if rows is None else rows
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
    scan order) of the rows that lost the dedup (:func:`~pipeline.store.dedup.losers`);
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
    lost = how.drop.get(index)
    if lost is not None and len(lost):
        if table.num_rows != how.rows[index]:
            raise RuntimeError(
                f"part files changed while being aggregated: {paths[0]} and others "
                f"({table.num_rows} rows, {how.rows[index]} when surveyed)"
            )
        keep = np.ones(table.num_rows, dtype=bool)
        keep[lost] = False
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


def read_part(
    partition: tuple[int, Sequence[str]], how: PartRead, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """One Dask partition: :func:`read_part_table` as pandas (labels as categoricals).

    ``columns``: the ones Dask's column projection asks for (a selection of the frame reads
    only those: ``columns=`` in the signature is what lets ``dd.from_map`` project).
    """
    if columns is not None:
        how = replace(how, names=tuple(columns))
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
    return tagged(table, partition[0], positions)


def plan(
    names: Sequence[str], scope: Scope, surveys: Sequence[tuple[np.ndarray, dict]]
) -> tuple[PartRead, dict[int, np.ndarray]]:
    """The :class:`PartRead` of a scan from its partitions' surveys, and the dedup candidates.

    Returns the read (no ``drop`` yet) and, per partition holding some, the
    positions of rows whose key repeats (:func:`~pipeline.store.dedup.candidates`).
    """
    categories = {
        name: tuple(sorted({v for _, labels in surveys for v in labels[name]}))
        for name in LABEL_COLUMNS
        if name in names
    }
    keys = [k for k, _ in surveys]
    how = PartRead(
        tuple(names),
        scope.expression(),
        scope.point_ids,
        categories,
        rows={i: len(k) for i, k in enumerate(keys)},
    )
    return how, candidates(keys)


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


def _begin(store: Path | str, columns: Sequence[str], scope: Scope, checked: Checked | None):
    check_columns(columns)
    parts, unreadable = check_parts(store) if checked is None else checked
    scan = StoreScan(str(store), len(parts), [p.name for p in unreadable])
    survey = PartRead(("point_id",), scope.expression(), scope.point_ids)
    return list(enumerate(partitions(parts))), scan, survey


def _dropped(drop: Mapping[int, np.ndarray]) -> int:
    return int(sum(len(v) for v in drop.values()))


def store_frame(
    store: Path | str,
    columns: Sequence[str],
    scope: Scope = Scope(),
    checked: Checked | None = None,
) -> tuple[dd.DataFrame, StoreScan]:
    """The store's rows in ``scope`` as a lazy Dask DataFrame, one row per ``point_id``.

    Two light passes run at once on the current Dask scheduler: the survey
    (ids as 64-bit keys, and label values) and, only for partitions holding a
    repeated key, a read of those rows' dedup columns, which
    :func:`pipeline.store.dedup.losers` resolves. The returned frame is lazy, one
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
    checked : (parts, unreadable), optional
        The store's parts as :func:`~pipeline.store.readers.check_parts` found them
        moments ago (the caller read the store already): not checked again.
        By default they are checked here: every part is hashed against the
        digest in its name (a cache spares unchanged parts) before Dask plans on
        it, so a truncated or bit-flipped file is never read; it is moved to
        ``<store>/_quarantine/``, its points are missing and it is reported
        (``StoreScan.unreadable``); the next sweep computes them again.
    """
    import dask
    import dask.dataframe as dd

    start = time.perf_counter()
    check_columns(columns)
    checked = check_parts(store) if checked is None else checked
    if checked[0] and is_unique(Path(store), checked[0]):
        scan = StoreScan(str(store), len(checked[0]), [p.name for p in checked[1]])
        scan.rows_in_scope = -1  # counted by the aggregation itself
        scan.plain = True
        scan.seconds = time.perf_counter() - start
        return plain_frame(checked[0], columns, scope), scan
    partitions_, scan, survey = _begin(store, columns, scope, checked)
    surveys = dask.compute(*(dask.delayed(survey_part, pure=True)(p, survey) for p in partitions_))
    how, found = plan(list(dict.fromkeys(columns)), scope, surveys)
    scan.rows_in_scope = sum(how.rows.values())
    if found:
        tables = dask.compute(
            *(
                dask.delayed(candidate_rows, pure=True)(partitions_[i], how, positions)
                for i, positions in found.items()
            )
        )
        how = replace(how, drop=losers(tables))
        scan.duplicates_dropped = _dropped(how.drop)
    meta = meta_frame(how)
    scan.seconds = time.perf_counter() - start
    if not partitions_:
        return dd.from_pandas(meta, npartitions=1), scan
    return dd.from_map(read_part, partitions_, args=(how,), meta=meta, label="read-store"), scan


def plain_frame(parts: Sequence[Path], columns: Sequence[str], scope: Scope) -> dd.DataFrame:
    """A store whose parts are duplicate-free, as a filtered ``dd.read_parquet``: no dedup work.

    What :func:`store_frame` returns when the store's index records every
    checked part as left duplicate-free by the last compaction.
    """
    import dask.dataframe as dd

    names = list(dict.fromkeys(columns))
    if scope.point_ids is not None:
        # an id set (a grid's): filtered in Arrow before pandas sees a row, as the dedup
        # path reads; ids read into pandas and matched there stayed resident (issue 22)
        how = PartRead(tuple(names), scope.expression(), scope.point_ids)
        return dd.from_map(
            read_part,
            list(enumerate(partitions(parts))),
            args=(how,),
            meta=meta_frame(how),
            label="read-store",
        )
    return dd.read_parquet([str(p) for p in parts], columns=names, filters=scope.filters())


def pandas_frame(
    store: Path | str,
    columns: Sequence[str],
    scope: Scope = Scope(),
    checked: Checked | None = None,
) -> tuple[pd.DataFrame, StoreScan]:
    """:func:`store_frame` in plain pandas, one partition after another, no Dask.

    The same reads and the same dedup (never the plain read's shortcut), so the
    two differ only in how the work is scheduled: the reference the tests compare
    the Dask frame with, and the benchmark's single-threaded baseline.
    """
    start = time.perf_counter()
    partitions_, scan, survey = _begin(store, columns, scope, checked)
    surveys = [survey_part(p, survey) for p in partitions_]
    how, found = plan(list(dict.fromkeys(columns)), scope, surveys)
    scan.rows_in_scope = sum(how.rows.values())
    if found:
        how = replace(
            how, drop=losers([candidate_rows(partitions_[i], how, pos) for i, pos in found.items()])
        )
        scan.duplicates_dropped = _dropped(how.drop)
    frames = [read_part(p, how) for p in partitions_]
    scan.seconds = time.perf_counter() - start
    return (pd.concat(frames, ignore_index=True) if frames else meta_frame(how)), scan
