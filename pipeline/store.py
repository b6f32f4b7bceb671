"""The results store: a directory of Parquet part files, one row per point.

Layout (``store.path``, default ``outputs/store``)::

    part-<UTC time>-<run id>-<seq>.parquet     committed parts, schema STORE_SCHEMA
    .part-...parquet.tmp                       a part being written (ignored by readers)

Readable as is with ``pyarrow.dataset.dataset(path)`` (files whose names start
with ``.`` or ``_`` are skipped by its discovery). The design choices that
the reliability and aggregation work build on:

* **A part file is the unit of commit.** It is written under a temporary
  name, fsync'ed and renamed (``os.replace`` is atomic on POSIX), so a reader
  or a killed writer never sees half a part. Nothing else (no manifest, no
  per-point directory) has to agree with the parts.
* **Rows are keyed by ``point_id``**, a hash of everything that determines
  the result (:mod:`pipeline.grid`). A rerun computes exactly the ids that no
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

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model.costs import ASI_COSTS
from model.evaluate import QUANTILES
from model.mechanism import EXIT_SOURCES
from model.params import BOOL_PARAMS, INT_PARAMS, POINT_PARAMS

STORE_SCHEMA_VERSION = "1"
"""Bumped when :data:`STORE_SCHEMA` changes in a way old readers cannot follow."""

LABEL_COLUMNS: tuple[str, ...] = ("workload", "cpu", "mitigations")
"""Names of the chosen presets: ``workload.name``, ``cpu.name`` and the roadmap stage ``mitigations.name``."""

PARAM_COLUMNS: tuple[str, ...] = tuple(POINT_PARAMS)
"""Every model point parameter, named as in :data:`model.params.POINT_PARAMS` (the
leaf of its config path: ``workload.file_size`` -> ``file_size``, ``ephmap.slots`` ->
``ephmap_slots``). Sizes in [bytes]."""

PROFILE_COLUMNS: tuple[str, ...] = ("seed", "samples", "cost_profile", "profile_overrides")
"""What fixes the cost draws: the seed, the sample count, a hash of the CPU
profile's name, clock and cost distributions, and the swept non-point values
(e.g. ``cpu.costs.ibpb.high=20000``) as ``key=value`` pairs, space separated."""

METRIC_COLUMNS: tuple[str, ...] = (
    "t_native_mean",
    "t_asi_mean",
    *(f"slowdown_{s}" for s in ("mean", *QUANTILES)),
    *(f"throughput_loss_{s}" for s in ("mean", *QUANTILES)),
    "exits_per_op",
    *(f"exits_{source}" for source in EXIT_SOURCES),
    *(f"extra_ns_{cost}" for cost in ASI_COSTS),
)
"""Every output of :func:`model.evaluate.evaluate` (times [ns/op], exits [1/op])."""

PROVENANCE_COLUMNS: tuple[str, ...] = (
    "model_version",
    "config_hash",
    "git_revision",
    "package_versions",
    "run_id",
    "created_at",
)
"""Where a row came from: model version, a hash of the composed config (execution
settings excluded), the code's git revision (``-dirty`` if uncommitted changes),
package versions (JSON), the sweep run, and the commit time of its part (UTC)."""


def _param_type(name: str) -> pa.DataType:
    if name in BOOL_PARAMS:
        return pa.bool_()
    if name in INT_PARAMS:
        return pa.int64()
    return pa.float64()


STORE_SCHEMA = pa.schema(
    [
        pa.field("point_id", pa.string(), nullable=False),
        *(pa.field(c, pa.string()) for c in LABEL_COLUMNS),
        *(pa.field(c, _param_type(c)) for c in PARAM_COLUMNS),
        pa.field("seed", pa.int64()),
        pa.field("samples", pa.int64()),
        pa.field("cost_profile", pa.string()),
        pa.field("profile_overrides", pa.string()),
        *(pa.field(c, pa.float64()) for c in METRIC_COLUMNS),
        *(pa.field(c, pa.string()) for c in PROVENANCE_COLUMNS[:-1]),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"asi.store_schema_version": STORE_SCHEMA_VERSION},
)
"""One row per point: id, labels, parameters, profile, metrics, provenance."""

ROW_COLUMNS: tuple[str, ...] = tuple(STORE_SCHEMA.names[: STORE_SCHEMA.names.index("git_revision")])
"""Columns a worker computes (up to ``config_hash``); the driver adds the run-wide rest."""

PART_PREFIX = "part-"
TMP_PREFIX = ".part-"


# --------------------------------------------------------------------------- provenance
REPO_ROOT = Path(__file__).resolve().parent.parent


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


def part_name(run_id: str, seq: int, created_at: datetime) -> str:
    """``part-<UTC time>-<run id>-<seq>.parquet``: sorts by commit time, unique per run."""
    return f"{PART_PREFIX}{created_at:%Y%m%dT%H%M%S%fZ}-{run_id}-{seq:05d}.parquet"


def write_part(store: Path, rows: pa.Table, run_id: str, seq: int) -> Path:
    """Commit worker ``rows`` as one part file: write a temporary file, fsync, rename.

    Returns the committed path. On any error the temporary file is removed and
    the error propagates; no committed part is touched.
    """
    store.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC)
    table = with_provenance(rows, run_id, created_at)
    final = store / part_name(run_id, seq, created_at)
    tmp = store / f".{final.name}.tmp"
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(store)
    return final


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
        self.parts.append(write_part(self.store, rows, self.run_id, len(self.parts)))
        self.rows_written += rows.num_rows


# --------------------------------------------------------------------------- reading
def part_files(store: Path) -> list[Path]:
    """Committed part files, oldest first."""
    if not store.is_dir():
        return []
    return sorted(p for p in store.glob(f"{PART_PREFIX}*.parquet") if p.is_file())


def existing_ids(store: Path) -> tuple[pa.Array, list[Path]]:
    """Every ``point_id`` committed to the store, and the part files that could not be read.

    Parts are read one by one so that one unreadable file (truncated by a full
    disk, say) does not hide the others: its points are simply computed again.
    """
    ids: list[pa.Array] = []
    unreadable: list[Path] = []
    for part in part_files(store):
        try:
            ids.append(
                pq.read_table(part, columns=["point_id"]).column("point_id").combine_chunks()
            )
        except (OSError, pa.ArrowException):
            unreadable.append(part)
    if not ids:
        return pa.array([], pa.string()), unreadable
    return pa.concat_arrays(ids), unreadable


def dedupe(table: pa.Table) -> pa.Table:
    """One row per ``point_id``: the earliest ``created_at``, then the smallest ``run_id``."""
    if table.num_rows == 0:
        return table
    order = pc.sort_indices(
        table,
        sort_keys=[("point_id", "ascending"), ("created_at", "ascending"), ("run_id", "ascending")],
    )
    ids = table.column("point_id").take(order).combine_chunks()
    keep = np.ones(len(ids), dtype=bool)
    if len(ids) > 1:
        keep[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return table.take(order.filter(pa.array(keep)))


def read(store: Path | str, columns: Iterable[str] | None = None) -> pa.Table:
    """The store as one table, deduplicated by :func:`dedupe`, sorted by ``point_id``."""
    store = Path(store)
    if not part_files(store):
        return STORE_SCHEMA.empty_table()
    wanted = None
    if columns is not None:
        wanted = list(dict.fromkeys([*columns, "point_id", "created_at", "run_id"]))
    import pyarrow.dataset as ds  # imports pandas: only readers pay for it

    table = ds.dataset(store, format="parquet", schema=STORE_SCHEMA).to_table(columns=wanted)
    table = dedupe(table)
    return table.select(list(columns)) if columns is not None else table
