"""One row per point: the store's dedup rule, and finding the losing copies by position.

The rule (:func:`dedupe`): of several rows with one ``point_id``, the earliest
``created_at`` wins, then the smallest ``run_id``. Their metrics are identical
by construction (deterministic draws), so the rule only has to be fixed.

Finding the losers without reading every column of every row is the same
three steps wherever rows come in groups (a part file for the compaction, a
Dask partition of part files for the store's frame):

1. the ids of each group, read alone, become 64-bit keys (:func:`id_keys`);
2. rows whose key repeats across all groups are candidates (:func:`candidates`),
   and only their dedup columns are read, tagged with where they are
   (:func:`tagged`);
3. :func:`dedupe` on the candidates, on the full ``point_id``, says which
   copies lose; :func:`losers` gives their positions per group, which the
   caller drops by position.

A key collision only makes a row a candidate, and candidates are deduplicated
on the full ``point_id``, so the result is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS


def dedupe(table: pa.Table) -> pa.Table:
    """One row per ``point_id``: the earliest ``created_at``, then the smallest ``run_id``."""
    if table.num_rows == 0:
        return table
    order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in DEDUP_COLUMNS])
    ids = table.column("point_id").take(order).combine_chunks()
    keep = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        keep[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return table.take(order.filter(pa.array(keep)))


# --------------------------------------------------------------------------- keys
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)
"""Odd multipliers mixing the four 8-byte words of a 32-character id into one key."""


def id_keys(ids: pa.Array | pa.ChunkedArray | pd.Series) -> np.ndarray:
    """A 64-bit key per ``point_id``: equal ids give equal keys.

    Point ids are 32 characters (:func:`pipeline.store.identity.point_ids`): their bytes
    are read straight from Arrow's string buffer as four 64-bit words and
    mixed, with no Python object per row. Ids of other lengths fall back to
    pandas' hash. Distinct ids may share a key: keys only nominate candidates
    for :func:`dedupe`, which compares full ids.
    """
    if isinstance(ids, pd.Series):
        ids = pa.array(ids, type=pa.string())
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks else pa.array([], pa.string())
    ids = ids.cast(pa.string())
    n = len(ids)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if ids.null_count == 0:
        offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1]
        if np.all(np.diff(offsets) == 32):
            data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
            words = data[offsets[0] : offsets[0] + 32 * n].view(np.uint64).reshape(n, 4)
            with np.errstate(over="ignore"):  # wrapping multiplication is the point
                mixed = words * _MIX
            return mixed[:, 0] ^ mixed[:, 1] ^ mixed[:, 2] ^ mixed[:, 3]
    values = np.asarray(ids.to_pylist(), dtype=object)
    return pd.util.hash_array(values, categorize=False).astype(np.uint64)


def has_key(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys`` (sorted, distinct): a binary search each."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def repeated_keys(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Keys that occur more than once across all groups, sorted and distinct."""
    if not keys:
        return np.empty(0, dtype=np.uint64)
    ordered = np.sort(np.concatenate(keys))
    return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])


# --------------------------------------------------------------------------- losers by position
def candidates(keys: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    """Per group holding some, the positions of its rows whose key repeats across all groups.

    ``keys`` are each group's :func:`id_keys`, in the group's row order. No
    entry at all when no key repeats (the usual case: nothing more to read).
    """
    repeated = repeated_keys(keys)
    found = {}
    if len(repeated):
        for index, group_keys in enumerate(keys):
            hits = np.flatnonzero(has_key(group_keys, repeated))
            if len(hits):
                found[index] = hits
    return found


def tagged(rows: pa.Table, index: int, positions: np.ndarray) -> pa.Table:
    """Candidate ``rows`` (their :data:`DEDUP_COLUMNS`) tagged with where they are: group and position."""
    where = (np.int64(index) << 32) | positions.astype(np.int64)
    return rows.append_column("_where", pa.array(where))


def losers(tables: Sequence[pa.Table]) -> dict[int, np.ndarray]:
    """Apply :func:`dedupe` to :func:`tagged` candidates; the losers' positions per group (sorted)."""
    rows = pa.concat_tables(tables)
    kept = dedupe(rows).column("_where").to_numpy()
    lost = np.setdiff1d(rows.column("_where").to_numpy(), kept)
    by_group: dict[int, list[int]] = {}
    for where in lost.tolist():
        by_group.setdefault(where >> 32, []).append(where & 0xFFFFFFFF)
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in by_group.items()}
