"""Compaction: after a sweep commits, the store holds one row per point, on disk.

Duplicates arise only when two sweeps compute the same point at once (or
from stores written by older code): both commit it. :func:`compact` finds
them from the id columns alone (64-bit keys, exact on the candidates), keeps
each point's winner by the store's one rule (:func:`~pipeline.store.dedup.dedupe`:
earliest ``created_at``, then smallest ``run_id``) and rewrites every part
holding a loser without it, rows otherwise byte-for-byte the same (their
provenance included). Each rewrite is a commit like any other
(:func:`~pipeline.store.parts.commit_bytes`: temporary name, fsync, rename)
followed by the removal of the part it replaces, so a crash at any moment
leaves every point stored: at worst once more than needed, which every
reader's duplicate check handles and the next compaction removes. Compactions of one store take turns (``flock`` on
``_compact.lock``, released by the kernel if its holder dies). The parts a
compaction leaves are recorded in the index as duplicate-free.
"""

from __future__ import annotations

import fcntl
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from asi_slowdown.pipeline.store.dedup import candidates, id_keys, tagged
from asi_slowdown.pipeline.store.dedup import losers as dedup_losers
from asi_slowdown.pipeline.store.parts import (
    _fsync_dir,
    commit_bytes,
    content_digest,
    encode_part,
    new_run_id,
    part_name,
)
from asi_slowdown.pipeline.store.readers import (
    check_parts,
    is_unique,
    load_index,
    read_ids,
    save_index,
)
from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS

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
    """Per part, the row positions of the copies that lose the dedup (none: no entry).

    The store's position dedup (:mod:`pipeline.store.dedup`), one part a group.
    """
    found = candidates([id_keys(read_ids([p])) for p in parts])
    if not found:
        return {}
    tables = [
        tagged(pq.read_table(parts[i], columns=list(DEDUP_COLUMNS)).take(pa.array(hits)), i, hits)
        for i, hits in found.items()
    ]
    return {parts[i]: positions for i, positions in dedup_losers(tables).items()}


def rewrite(part: Path, drop: np.ndarray) -> Path | None:
    """Commit ``part`` without the rows at ``drop``, then remove it; the new part (None: empty).

    The new part is committed like every part (:func:`~pipeline.store.parts.commit_bytes`).
    """
    table = pq.read_table(part)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    new = None
    if keep.any():
        data = encode_part(table.filter(pa.array(keep)))
        name = part_name(new_run_id(), 0, datetime.now(UTC), content_digest(data))
        new = commit_bytes(part.parent, name, data)
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
