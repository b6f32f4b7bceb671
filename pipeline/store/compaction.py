"""Compaction: after a sweep commits, the store holds one row per point, on disk.

Duplicates arise only when two sweeps compute the same point at once (or
from stores written by older code): both commit it. :func:`compact` finds
them from the id columns alone (64-bit keys, exact on the candidates), keeps
each point's winner by the store's one rule (:func:`~pipeline.store.readers.dedupe`:
earliest ``created_at``, then smallest ``run_id``) and rewrites every part
holding a loser without it, rows otherwise byte-for-byte the same (their
provenance included). Each rewrite is a commit like any other (temporary
name, fsync, rename) followed by the removal of the part it replaces, so a
crash at any moment leaves every point stored: at worst once more than
needed, which every reader's duplicate check handles and the next compaction
removes. Compactions of one store take turns (``flock`` on
``_compact.lock``, released by the kernel if its holder dies). The parts a
compaction leaves are recorded in the index as duplicate-free.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store.parts import (
    _fsync_dir,
    _publish,
    content_digest,
    discard,
    new_run_id,
    part_name,
    temporary_name,
)
from pipeline.store.readers import (
    check_parts,
    dedupe,
    has_key,
    id_keys,
    is_unique,
    load_index,
    read_ids,
    repeated_keys,
    save_index,
)
from pipeline.store.schema import DEDUP_COLUMNS

LOCK = "_compact.lock"


@contextmanager
def _turn(store: Path):
    """Hold the store's compaction lock for the block (blocking; dies with its holder)."""
    with open(store / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def losers(parts: Sequence[Path]) -> dict[Path, np.ndarray]:
    """Per part, the row positions of the copies that lose the dedup (none: no entry)."""
    ids = [read_ids([p]) for p in parts]
    keys = [id_keys(i) for i in ids]
    repeated = repeated_keys(keys)
    if not len(repeated):
        return {}
    tables = []
    for index, (part, part_keys) in enumerate(zip(parts, keys, strict=True)):
        hits = np.flatnonzero(has_key(part_keys, repeated))
        if len(hits):
            rows = pq.read_table(part, columns=list(DEDUP_COLUMNS)).take(pa.array(hits))
            where = (np.int64(index) << 32) | hits.astype(np.int64)
            tables.append(rows.append_column("_where", pa.array(where)))
    candidates = pa.concat_tables(tables)
    kept = dedupe(candidates).column("_where").to_numpy()
    lost = np.setdiff1d(candidates.column("_where").to_numpy(), kept)
    out: dict[Path, list[int]] = {}
    for where in lost.tolist():
        out.setdefault(parts[where >> 32], []).append(where & 0xFFFFFFFF)
    return {p: np.array(sorted(v), dtype=np.int64) for p, v in out.items()}


def rewrite(part: Path, drop: np.ndarray) -> Path | None:
    """Commit ``part`` without the rows at ``drop``, then remove it; the new part (None: empty)."""
    table = pq.read_table(part)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    new = None
    if keep.any():
        sink = pa.BufferOutputStream()
        pq.write_table(table.filter(pa.array(keep)), sink, compression="zstd")
        data = sink.getvalue()
        new = part.parent / part_name(new_run_id(), 0, datetime.now(UTC), content_digest(data))
        tmp = part.parent / temporary_name(new.name)
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            _publish(tmp, new)
        except BaseException:
            discard(tmp)
            raise
    part.unlink()
    _fsync_dir(part.parent)
    return new


def compact(store: Path | str) -> int:
    """Leave one row per point in ``store``; returns how many duplicate rows were removed.

    Cheap when there is nothing to do: if the index already records every
    part as duplicate-free, no data is read.
    """
    store = Path(store)
    if not store.is_dir():
        return 0
    with _turn(store):
        parts, _ = check_parts(store)
        if is_unique(store, parts):
            return 0
        removed = 0
        result = list(parts)
        for part, drop in losers(parts).items():
            new = rewrite(part, drop)
            result.remove(part)
            if new is not None:
                result.append(new)
            removed += len(drop)
        index = load_index(store)
        index["unique"] = sorted(p.name for p in result)
        save_index(store, index)
        check_parts(store)  # the rewritten parts are verified now, not by the next reader
        return removed
