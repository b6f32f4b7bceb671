"""The results store: a directory of Parquet part files, one row per point.

Layout (``store.path``, default ``outputs/store``)::

    part-<UTC time>-<run id>-<seq>-<digest>.parquet   committed parts, schema STORE_SCHEMA
    .part-...parquet.<pid>@<host>.tmp                a part being written (ignored by readers)
    _quarantine/part-...parquet                      parts that failed their check, moved aside

Readable as is with ``pyarrow.dataset.dataset(path)`` (files whose names start
with ``.`` or ``_`` are skipped by its discovery, ``_quarantine/`` included).
The design choices that the reliability and aggregation work build on:

* **A part file is the unit of commit.** It is written under a temporary
  name, fsync'ed and renamed (``os.replace`` is atomic on POSIX), so a reader
  or a killed writer never sees half a part. Nothing else (no manifest, no
  per-point directory) has to agree with the parts.
* **A part proves its own integrity.** Its name ends with a digest of its
  bytes (:func:`content_digest`). Every read path (:func:`existing_ids`,
  :func:`read`, :func:`check_parts` for the aggregation) checks it and moves a
  part that fails (truncated, bit-flipped, unparseable) to ``_quarantine/``,
  never deleting it; its points are then missing, so the next sweep computes
  them again. Parts without a digest (older code, hand-written) are checked
  by their Parquet footer only.
* **A killed writer leaves litter, never damage**: at most a temporary file
  named after its process, removed by the next sweep once that process is
  gone (:func:`remove_stale_temporaries`).
* **Rows are keyed by ``point_id``**, a hash of everything that determines
  the result (:mod:`pipeline.store.identity`). A rerun computes exactly the ids that no
  committed part holds (:func:`existing_ids`).
* **Duplicates are harmless.** Two sweeps writing the same store, or a driver
  killed between a commit and its bookkeeping, can leave one id in several
  parts; their metrics are identical by construction (deterministic draws),
  and :func:`read` keeps one row per id by a fixed rule: earliest
  ``created_at``, then smallest ``run_id``.
* **The schema is one constant**, :data:`STORE_SCHEMA`, derived from the
  model's glossary and its output names; every part carries
  ``STORE_SCHEMA_VERSION`` in its metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from asi_slowdown.pipeline.store.schema import STORE_SCHEMA

PART_PREFIX = "part-"
TMP_PREFIX = ".part-"


# --------------------------------------------------------------------------- provenance
REPO_ROOT = Path(__file__).resolve().parents[2]


@cache
def git_revision(repo: Path = REPO_ROOT) -> str:
    """``HEAD``'s commit, with ``-dirty`` if the work tree differs; ``unknown`` outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


PROVENANCE_PACKAGES = (
    "asi-slowdown",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "ray",
    "hydra-core",
    "omegaconf",
)


@cache
def package_versions() -> str:
    """Versions of Python and the packages results depend on, as compact sorted JSON."""
    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return json.dumps(versions, sort_keys=True, separators=(",", ":"))


def new_run_id() -> str:
    """A fresh id for one sweep run (random: two concurrent sweeps never share one)."""
    return uuid.uuid4().hex[:16]


# --------------------------------------------------------------------------- writing
def constant(value: str, n: int) -> pa.Array:
    """A string column of ``n`` copies of ``value`` (one C++ ``take``, no Python objects)."""
    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32)))


def with_provenance(rows: pa.Table, run_id: str, created_at: datetime) -> pa.Table:
    """Append the run-wide provenance columns to worker rows and cast to :data:`STORE_SCHEMA`."""
    n = rows.num_rows
    constants = {
        "git_revision": git_revision(),
        "package_versions": package_versions(),
        "run_id": run_id,
    }
    for name, value in constants.items():
        rows = rows.append_column(name, constant(value, n))
    stamp = pa.array(np.full(n, np.datetime64(created_at.replace(tzinfo=None), "us")))
    rows = rows.append_column("created_at", stamp.cast(pa.timestamp("us", tz="UTC")))
    return rows.select(STORE_SCHEMA.names).cast(STORE_SCHEMA)


def part_name(run_id: str, seq: int, created_at: datetime, digest: str | None = None) -> str:
    """``part-<UTC time>-<run id>-<seq>-<digest>.parquet``: sorts by commit time, unique per run.

    ``digest`` is :func:`content_digest` of the file's bytes; without it the
    name has no last field (parts written by older code).
    """
    tail = f"-{digest}" if digest else ""
    return f"{PART_PREFIX}{created_at:%Y%m%dT%H%M%S%fZ}-{run_id}-{seq:05d}{tail}.parquet"


DIGEST_CHARS = 16
"""Hex characters of a part's content digest (64 bits: a random corruption goes unseen
with probability 2**-64)."""

_DIGEST = re.compile(rf"-([0-9a-f]{{{DIGEST_CHARS}}})\.parquet$")


def content_digest(data) -> str:
    """The digest a part's name carries: SHA-256 of its bytes, truncated (fast with SHA-NI)."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def name_digest(name: str) -> str | None:
    """The digest in a part file's name, or None for a part written without one."""
    found = _DIGEST.search(name)
    return found.group(1) if found else None


class StoreWriteError(OSError):
    """A part could not be committed (disk full, permissions): one line, the store intact."""


def temporary_name(final: str) -> str:
    """``.<final>.<pid>@<host>.tmp``: hidden from readers, and says which process writes it."""
    return f".{final}.{os.getpid()}@{socket.gethostname()}.tmp"


def discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; never raises.

    For cleanup paths: on a read-only file system even unlinking a file
    that does not exist fails (``EROFS``, not ``ENOENT``), and that error
    must not replace the one being handled.
    """
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def check_writable(directory: Path) -> None:
    """Raise ``OSError`` unless files can be created in ``directory`` (made if missing).

    What a sweep asks before it computes anything, so that a read-only file
    system or a directory without write permission is one line up front,
    not a failed commit after the work. A probe file under a temporary
    part's name (hidden from readers; a killed prober's is removed like any
    dead writer's) is created and deleted: ``os.access`` is not enough, as
    root passes it on a directory whose mode forbids writing, and it does not
    see every reason a network file system refuses a write.
    """
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / temporary_name(f"{PART_PREFIX}probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.close(fd)
    finally:
        discard(probe)


def encode_part(table: pa.Table) -> pa.Buffer:
    """A table as the bytes of a Parquet file (zstd), in memory: hashed before it is written."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def write_part(store: Path, rows: pa.Table, run_id: str, seq: int) -> Path:
    """Commit worker ``rows`` as one part file (:func:`commit_bytes`): temporary file, fsync, rename.

    Returns the committed path. On any error the temporary file is removed and
    the error propagates (an ``OSError`` as :class:`StoreWriteError`, one line);
    no committed part is touched.
    """
    created_at = datetime.now(UTC)
    data = encode_part(with_provenance(rows, run_id, created_at))
    try:
        return commit_bytes(store, part_name(run_id, seq, created_at, content_digest(data)), data)
    except OSError as exc:
        raise StoreWriteError(
            f"cannot commit a part file to the store {store}: {exc.strerror or exc} "
            f"({rows.num_rows} points not stored; committed parts are intact, "
            "rerun to compute the missing points)"
        ) from exc


def commit_bytes(folder: Path, name: str, data) -> Path:
    """Publish ``data`` as ``folder/name``, all or nothing; returns the committed path.

    The one way a part file is written, in the results store and in the
    nightly history alike: the bytes go to a temporary file named after this
    process (:func:`temporary_name`), which is fsync'ed, atomically renamed
    and its folder fsync'ed (:func:`_publish`). On any error the temporary
    file is removed and the error propagates as it was; no other file in
    ``folder`` is touched. ``folder`` is created if missing.
    """
    final = folder / name
    tmp = folder / temporary_name(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, final)
    except BaseException:
        discard(tmp)
        raise
    return final


def _publish(tmp: Path, final: Path) -> None:
    """Make a written, fsync'ed part visible: the atomic rename, persisted."""
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _fsync_dir(path: Path) -> None:
    """Persist a rename (the directory entry), where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class PartWriter:
    """Buffers worker rows and commits them as part files.

    A part is committed once ``part_rows`` rows are buffered or ``flush_seconds``
    have passed since the last commit: few, large files for big sweeps, and a
    bounded loss (one buffer) if the driver is killed.
    """

    def __init__(self, store: Path, run_id: str, part_rows: int, flush_seconds: float) -> None:
        self.store = store
        self.run_id = run_id
        self.part_rows = part_rows
        self.flush_seconds = flush_seconds
        self.parts: list[Path] = []
        self.rows_written = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._last = time.monotonic()

    def add(self, rows: pa.Table) -> None:
        """Buffer ``rows``; commit if the buffer is full or old."""
        self._buffer.append(rows)
        self._buffered += rows.num_rows
        if self._buffered >= self.part_rows or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Commit whatever is buffered as one part file."""
        self._last = time.monotonic()
        if not self._buffer:
            return
        rows = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        seq = len(self.parts)
        try:
            path = write_part(self.store, rows, self.run_id, seq)
        except BaseException:
            # an interrupt (Ctrl-C) can land after the rename published the part and before
            # it is recorded here: what is on disk under this run and sequence is committed
            marker = f"-{self.run_id}-{seq:05d}"
            path = next((p for p in part_files(self.store) if marker in p.name), None)
            if path is not None:
                self.rows_written += rows.num_rows
                self.parts.append(path)
            raise
        self.rows_written += rows.num_rows
        self.parts.append(path)


# --------------------------------------------------------------------------- reading
def part_files(store: Path) -> list[Path]:
    """Committed part files, oldest first."""
    if not store.is_dir():
        return []
    return sorted(p for p in store.glob(f"{PART_PREFIX}*.parquet") if p.is_file())


QUARANTINE = "_quarantine"
"""Where parts that fail their check are moved (inside the store; ``_`` hides it from
``pyarrow.dataset`` discovery). Nothing reads it: it is kept for a human to inspect."""

STALE_TMP_SECONDS = 3600.0
"""A temporary part from another host (whose process cannot be checked) is litter after this [s]."""

_TMP_OWNER = re.compile(r"\.(\d+)@([^@/]*)\.tmp$")


class CorruptPart(ValueError):
    """A committed part whose bytes do not match its name's digest, or do not parse."""


def verify(part: Path, data=None) -> None:
    """Raise :class:`CorruptPart` unless ``part`` is intact; ``OSError`` if it cannot be read.

    ``data`` is the part's bytes if already read (then exactly those are
    checked); otherwise the file is streamed. A part with a digest in its name
    must match it; one without must have a readable Parquet footer.
    """
    expected = name_digest(part.name)
    if expected is None:
        try:
            pq.read_metadata(pa.BufferReader(data) if data is not None else part)
        except pa.ArrowException as exc:
            raise CorruptPart(f"{part.name}: unreadable Parquet footer ({exc})") from None
        return
    if data is None:
        with open(part, "rb") as handle:
            actual = hashlib.file_digest(handle, "sha256").hexdigest()[:DIGEST_CHARS]
    else:
        actual = content_digest(data)
    if actual != expected:
        raise CorruptPart(f"{part.name}: content digest {actual}, its name says {expected}")


def quarantine(part: Path) -> Path | None:
    """Move a bad part to ``_quarantine/`` in its folder (never delete it); where it went.

    None if another reader moved it first or the store is read-only (then it
    stays in place and is skipped again by every read; callers tell the two
    apart by whether ``part`` still exists).
    """
    folder = part.parent / QUARANTINE
    try:
        folder.mkdir(exist_ok=True)
        target = folder / part.name
        copies = 0
        while target.exists():  # never overwrite an earlier quarantined file
            copies += 1
            target = folder / f"{part.name}.{copies}"
        os.rename(part, target)
    except OSError:
        return None
    _fsync_dir(part.parent)
    return target


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_stale_temporary(tmp: Path, now: float, max_age: float = STALE_TMP_SECONDS) -> bool:
    """Whether a temporary part's writer is gone: its process ended (this host) or it is old."""
    owner = _TMP_OWNER.search(tmp.name)
    if owner and owner.group(2) == socket.gethostname():
        return not _writer_alive(int(owner.group(1)))
    try:
        return now - tmp.stat().st_mtime > max_age
    except FileNotFoundError:
        return False


def remove_stale_temporaries(store: Path, max_age: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete temporary parts left by killed writers (never a live writer's); which ones.

    A temporary part is never a result (its rows were not committed, so they
    are computed again): deleting it loses nothing. ``store`` is any folder of
    parts (the results store, a night of the history); in a read-only one the
    litter stays where it is (readers ignore it) and is not listed.
    """
    if not store.is_dir():
        return []
    now = time.time()
    removed = []
    for tmp in store.glob(f"{TMP_PREFIX}*.tmp"):
        if is_stale_temporary(tmp, now, max_age):
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # a read-only store keeps its litter; readers ignore it anyway
                continue
            removed.append(tmp)
    return removed
