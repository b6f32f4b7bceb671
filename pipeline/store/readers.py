"""Reading the store: checked parts (digests verified once, cached), ids, rows, lookups.

Every reader first calls :func:`check_parts`: each committed part is hashed
against the digest in its name unless the store's index already holds a
verification of it under the same name, size and modification time (a part
is immutable once committed, so an unchanged file needs no second hash). A
part that fails is moved to ``_quarantine/`` and its points count as
missing. The index (``_index.json``, hidden from ``pyarrow.dataset``
discovery) also records the set of parts the last compaction
(:mod:`pipeline.store.compaction`) left with one row per point; a read whose
parts all belong to it is a plain filtered read, and any other read
deduplicates (:func:`~pipeline.store.dedup.dedupe`) as a safety net. The index is a cache: deleting
it costs one re-hash and one deduplicating read, never a result.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from asi_slowdown.pipeline.store.dedup import dedupe
from asi_slowdown.pipeline.store.parts import (
    TMP_PREFIX,
    CorruptPart,
    discard,
    part_files,
    quarantine,
    remove_stale_temporaries,
    verify,
)
from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS, STORE_SCHEMA

INDEX = "_index.json"
"""The store's index: ``verified`` {part name: [size, mtime_ns]} and ``unique`` (part names)."""


# --------------------------------------------------------------------------- the index
def load_index(store: Path) -> dict:
    """The store's index, or an empty one (missing, unreadable or damaged: it is a cache)."""
    try:
        index = json.loads((store / INDEX).read_text())
    except (OSError, ValueError):
        return {"verified": {}, "unique": []}
    if not isinstance(index, dict):
        return {"verified": {}, "unique": []}
    verified = index.get("verified")
    unique = index.get("unique")
    return {
        "verified": verified if isinstance(verified, dict) else {},
        "unique": unique if isinstance(unique, list) else [],
    }


def save_index(store: Path, index: dict) -> None:
    """Replace the index atomically; a read-only store keeps its old one (or none)."""
    tmp = store / f"{TMP_PREFIX}index.{os.getpid()}@{socket.gethostname()}.tmp"
    try:
        tmp.write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))
        os.replace(tmp, store / INDEX)
    except OSError:
        discard(tmp)


RACY_SECONDS = 2.0
"""A part modified this recently is hashed on every read, never cached: a change within
the file system's timestamp granularity could keep its size and mtime (git's "racily
clean" rule)."""


def stat_key(part: Path) -> list[int] | None:
    """What a cached verification is keyed by besides the name: size and mtime [ns]."""
    try:
        st = part.stat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _cacheable(key: list[int] | None, now_ns: int) -> bool:
    return key is not None and now_ns - key[1] > RACY_SECONDS * 1e9


def is_unique(store: Path, parts: Sequence[Path], index: dict | None = None) -> bool:
    """Whether ``parts`` all belong to the set the last compaction left duplicate-free.

    Parts are immutable and named by their digest, so a set once checked stays
    duplicate-free, and so does any subset of it.
    """
    unique = set((index or load_index(store))["unique"])
    return all(p.name in unique for p in parts)


# --------------------------------------------------------------------------- checking
def _intact(part: Path) -> bool | None:
    """True if ``part`` verifies, False if not, None if it vanished (moved by another reader)."""
    try:
        verify(part)
    except FileNotFoundError:
        return None
    except (CorruptPart, OSError):
        return False
    return True


def check_folder(folder: Path | str) -> tuple[list[Path], dict[Path, Path | None]]:
    """The committed parts of ``folder`` that verify, and where each that did not went.

    The one check every reader of part files runs, the results store's and
    the nightly history's (one folder per night). Parts verified before
    under the same name, size and mtime are not hashed again (the folder's
    ``_index.json``); the others are (SHA-256 releases the GIL: one thread
    per core). A part that fails is moved to ``_quarantine/``
    (:func:`~pipeline.store.parts.quarantine`); its value in the mapping is
    its new path, or None if it was not moved (a read-only folder: it stays
    in place and is skipped again; or another reader moved it first).
    """
    folder = Path(folder)
    parts = part_files(folder)
    index = load_index(folder)
    known = index["verified"]
    keys = {p.name: stat_key(p) for p in parts}
    todo = [p for p in parts if keys[p.name] is None or known.get(p.name) != keys[p.name]]
    verdicts = dict.fromkeys((p.name for p in parts), True)
    if todo:
        workers = max(1, min(len(todo), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            verdicts.update(zip((p.name for p in todo), pool.map(_intact, todo), strict=True))
    moved = {p: quarantine(p) for p in parts if verdicts[p.name] is False}
    good = [p for p in parts if verdicts[p.name]]
    now_ns = time.time_ns()
    fresh = {p.name: keys[p.name] for p in good if _cacheable(keys[p.name], now_ns)}
    if fresh != known:
        index["verified"] = fresh
        save_index(folder, index)
    return good, moved


def read_folder(folder: Path | str) -> tuple[list[pa.Table], dict[Path, Path | None]]:
    """Every committed part of ``folder`` that passes its check and decodes, whole, oldest first;
    and where each that did not went (:func:`check_folder`'s mapping).

    The nightly history's read of one night (a folder of parts written by
    :func:`~pipeline.store.parts.commit_bytes`, not the results store's schema):
    temporaries of dead writers are removed, each part is checked
    (:func:`check_folder`), and one that verifies but does not decode (a
    damaged part written without a digest) is quarantined too. A part moved
    by a concurrent reader since the check maps to None.
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    remove_stale_temporaries(folder)
    good, moved = check_folder(folder)
    tables = []
    for part in good:
        try:
            tables.append(pq.read_table(part))
        except FileNotFoundError:  # moved by a concurrent reader since the check
            moved[part] = None
        except (pa.ArrowException, OSError):
            moved[part] = quarantine(part)
    return tables, moved


def check_parts(store: Path | str) -> tuple[list[Path], list[Path]]:
    """The store's committed parts that verify, and those that did not (:func:`check_folder`)."""
    good, moved = check_folder(store)
    return good, list(moved)


# --------------------------------------------------------------------------- ids
def read_ids(parts: Sequence[Path]) -> pa.Array:
    """The ``point_id`` column of ``parts``, in order (only that column is decoded)."""
    import pyarrow.dataset as ds  # imports pandas: only readers pay for it

    if not parts:
        return pa.array([], pa.string())
    table = ds.dataset([str(p) for p in parts], format="parquet").to_table(columns=["point_id"])
    column = table.column("point_id")
    return column.combine_chunks() if column.num_chunks else pa.array([], pa.string())


def existing_ids(store: Path) -> tuple[pa.Array, list[Path]]:
    """Every ``point_id`` committed to the store, and the parts that failed their check.

    What a sweep reads before it plans: the parts are checked
    (:func:`check_parts`: a digest cache spares unchanged parts a second
    hash) and only their id column is read. A part that fails is moved to
    ``_quarantine/`` and its points count as missing, so they are computed
    again. Temporary parts of killed writers are removed on the way
    (:func:`~pipeline.store.parts.remove_stale_temporaries`).
    """
    remove_stale_temporaries(store)
    unreadable: list[Path] = []
    for _ in range(3):  # a part compacted away between the listing and the read: list again
        parts, bad = check_parts(store)
        unreadable += bad
        try:
            return read_ids(parts), unreadable
        except FileNotFoundError:
            continue
    raise OSError(f"the store {store} kept changing while its ids were read")


# --------------------------------------------------------------------------- rows
def check_columns(columns: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the ``columns`` that are not store columns."""
    unknown = [c for c in columns if c not in STORE_SCHEMA.names]
    if unknown:
        raise ValueError(f"not store columns: {', '.join(unknown)}")


Checked = tuple[list[Path], list[Path]]
"""A store's committed parts that passed their check, and those that did not
(:func:`check_parts`): a reader given one does not check again."""


def _scan(
    store: Path,
    columns: Sequence[str],
    filter_=None,
    always_dedupe: bool = False,
    checked: Checked | None = None,
) -> pa.Table:
    """The verified parts' ``columns`` (plus the dedup columns), one row per point."""
    import pyarrow.dataset as ds  # imports pandas: only readers pay for it

    check_columns(columns)
    wanted = list(dict.fromkeys([*DEDUP_COLUMNS, *columns]))
    for attempt in range(3):  # a part compacted away between the listing and the read: list again
        parts, _bad = checked if checked is not None and attempt == 0 else check_parts(store)
        if not parts:
            return STORE_SCHEMA.empty_table().select(wanted)
        dataset = ds.dataset([str(p) for p in parts], format="parquet", schema=STORE_SCHEMA)
        try:
            table = dataset.to_table(columns=wanted, filter=filter_)
        except FileNotFoundError:
            continue
        if always_dedupe or not is_unique(store, parts):
            return dedupe(table)
        return table.take(pc.sort_indices(table, sort_keys=[("point_id", "ascending")]))
    raise OSError(f"the store {store} kept changing while it was read")


def read(
    store: Path | str,
    columns: Iterable[str] | None = None,
    where: pc.Expression | None = None,
    checked: Checked | None = None,
) -> pa.Table:
    """The store as one table, one row per ``point_id``, sorted by ``point_id``.

    Only parts that pass :func:`check_parts` are read; the others are
    quarantined. ``columns`` (default: all) selects store columns, also on an
    empty store; ``where``, a pyarrow filter pushed down to the part files,
    keeps only the rows it matches. ``checked``, what :func:`check_parts`
    returned moments ago, spares the check (a part gone since is listed again).
    """
    names = list(STORE_SCHEMA.names if columns is None else columns)
    return _scan(Path(store), names, where, checked=checked).select(names)


def lookup(
    store: Path | str,
    point_ids: Sequence[str],
    columns: Sequence[str] | None = None,
    checked: Checked | None = None,
) -> pa.Table:
    """The stored rows of ``point_ids`` (one per point, by the store's dedup rule), as Arrow.

    For a handful of ids (``asi-answer``): one pyarrow scan with the id filter
    pushed down, no Dask. Unreadable parts are skipped (``checked`` as in
    :func:`read`). The result has the dedup columns and ``columns`` (default: all).
    """
    names = list(STORE_SCHEMA.names if columns is None else columns)
    ids_filter = pc.field("point_id").isin(list(point_ids))
    return _scan(Path(store), names, ids_filter, always_dedupe=True, checked=checked)
