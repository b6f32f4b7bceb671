"""Aggregating the results store against a plain Dask read of the same files, on 10^7 rows.

A synthetic store shaped like a nightly sweep repeated over many seeds
(5 workloads x 3 CPU profiles x 7 stages x 64 CPU counts x 8 file sizes x
4 slot counts = 215,040 cube cells, ~47 rows each) is written to a temporary
directory as digest-named part files of 500,000 rows, with 0.1 % of the
points stored twice by a later run (two overlapping sweeps), then compacted
as every sweep does (:func:`pipeline.store.compact`). Both sides then compute
the same reductions (:func:`pipeline.report.aggregate.stage_summary` and
:func:`~pipeline.report.aggregate.cube` of the headline metrics) on Dask
threads: the project's :func:`~pipeline.report.aggregate.aggregate` of the
store's frame (:func:`pipeline.store.frame.store_frame`: parts checked
against their digests through the store's cache, the duplicate check, filters
pushed down) and a plain ``dask.dataframe.read_parquet(...)`` of the same
columns with no integrity work.

Keys: ``aggregate_rows_per_s``, ``aggregate_plain_dask_rows_per_s``,
``aggregate_vs_plain_dask_ratio`` (plain time / project time: 1 means the
integrity work is free; target >= 0.7), ``aggregate_first_read_s`` (the first
aggregation after the sweep, which hashes every part once),
``aggregate_compact_s``, ``aggregate_peak_rss_mb``, ``aggregate_store_rows``,
and the context to read them in: ``aggregate_dask_workers`` and
``aggregate_load_avg_1m``. Best of three runs each, interleaved.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dask
import numpy as np
import pyarrow as pa

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.report import aggregate as agg
from asi_slowdown.pipeline.store.schema import DEDUP_COLUMNS, METRIC_COLUMNS, STORE_SCHEMA

from .common import peak_rss_mb

ROWS = 10_000_000
PART_ROWS = 500_000
DUPLICATE_FRACTION = 0.001
"""Share of points written a second time by a later "run" (two overlapping sweeps)."""

WORKLOADS = ("fio_randread_tmpfs", "fio_seqread_ext4", "fork_exec", "kernel_compile", "migrate")
CPU_PROFILES = ("sapphire_rapids", "skylake_l1tf", "amd_zen4")
STAGES = tuple(f"stage{i}" for i in range(7))
CPUS = np.arange(1, 65)
FILE_SIZES = np.array([4, 16, 64, 256, 1024, 4096, 16384, 65536]) << 20
SLOTS = np.array([1, 2, 4, 8])

SUMMARISED = tuple(k for k in agg.STAGE_SUMMARY_AGGS if k in METRIC_COLUMNS)
"""Metrics the stage summary reads besides the quantiles (the confidence shares, the slowdown
against the kernel's default): the synthetic store needs them too."""
COLUMNS = tuple(
    dict.fromkeys([*DEDUP_COLUMNS, *agg.CUBE_KEYS, "seed", *agg.HEADLINE_METRICS, *SUMMARISED])
)
SCHEMA = pa.schema([STORE_SCHEMA.field(c) for c in COLUMNS])


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random 32-hex-digit ids, built without a Python object per row."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = digits[rng.integers(0, 16, size=(n, 32), dtype=np.uint8)]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def synthetic_rows(start: int, n: int, rng: np.random.Generator, created: datetime) -> pa.Table:
    """Rows ``start .. start + n`` of the synthetic store (cells cycle fastest, then seeds)."""
    index = np.arange(start, start + n)
    axes = [WORKLOADS, CPU_PROFILES, STAGES, CPUS, FILE_SIZES, SLOTS]
    sizes = [len(a) for a in axes]
    cells = int(np.prod(sizes))
    cell, seed = index % cells, index // cells
    picks = []
    for size in reversed(sizes):
        picks.append(cell % size)
        cell = cell // size
    w, c, s, cpus, fs, slots = reversed(picks)
    p50 = rng.lognormal(-3.0, 1.5, n)
    spread = rng.uniform(1.2, 3.0, n)
    slowdown = {"slowdown_p05": p50 / spread, "slowdown_p50": p50, "slowdown_p95": p50 * spread}
    columns = {
        "point_id": _hex_ids(rng, n),
        "created_at": pa.array(np.full(n, np.datetime64(created.replace(tzinfo=None), "us"))),
        "run_id": pa.array(np.full(n, "run0", dtype=object), pa.string()),
        "workload": pa.DictionaryArray.from_arrays(w.astype(np.int32), WORKLOADS).cast(pa.string()),
        "cpu": pa.DictionaryArray.from_arrays(c.astype(np.int32), CPU_PROFILES).cast(pa.string()),
        "mitigations": pa.DictionaryArray.from_arrays(s.astype(np.int32), STAGES).cast(pa.string()),
        "cpus": CPUS[cpus],
        "file_size": FILE_SIZES[fs],
        "ephmap_slots": SLOTS[slots],
        "seed": seed,
        **slowdown,
        **{k.replace("slowdown", "throughput_loss"): v / (1 + v) for k, v in slowdown.items()},
    }
    for name in SUMMARISED:  # shares in [0, 1]; a slowdown against the default around p50
        if name not in columns:
            columns[name] = (
                rng.uniform(0.0, 1.0, n) if name.startswith("p_") else p50 - rng.uniform(0, 0.02, n)
            )
    return pa.table(columns).cast(SCHEMA)


def _commit(path: Path, table: pa.Table, run_id: str, seq: int, when: datetime) -> None:
    """A part as a sweep names it: the digest of its bytes in its name."""
    data = store.encode_part(table)
    (path / store.part_name(run_id, seq, when, store.content_digest(data))).write_bytes(data)


def write_synthetic_store(path: Path, rows: int = ROWS, part_rows: int = PART_ROWS) -> int:
    """Write the synthetic store; returns the rows written (duplicates included)."""
    rng = np.random.default_rng(20260101)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    written = 0
    for seq, start in enumerate(range(0, rows, part_rows)):
        table = synthetic_rows(start, min(part_rows, rows - start), rng, created)
        _commit(path, table, "run0", seq, created)
        written += table.num_rows
        # A later overlapping run stored some of the same points again.
        dup = table.take(np.flatnonzero(rng.random(table.num_rows) < DUPLICATE_FRACTION))
        later = created + timedelta(hours=1)
        dup = dup.set_column(
            1,
            "created_at",
            pa.array(np.full(dup.num_rows, np.datetime64(later.replace(tzinfo=None), "us"))).cast(
                SCHEMA.field("created_at").type
            ),
        )
        _commit(path, dup, "run1", seq, later)
        written += dup.num_rows
    return written


REPEAT = 3
"""Runs of each side, interleaved; the best counts (this 2-core machine is shared)."""


def _timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def plain_dask(path: Path, metrics) -> tuple:
    """The baseline: ``dd.read_parquet`` of the same columns, the same two reductions."""
    import dask.dataframe as dd

    frame = dd.read_parquet(str(path), columns=agg._needed(metrics))
    return dask.compute(agg.stage_summary(frame), agg.cube(frame, metrics))


def run(rows: int = ROWS) -> dict:
    workers = os.cpu_count() or 1
    metrics = agg.HEADLINE_METRICS
    with tempfile.TemporaryDirectory(prefix="asi-bench-store-") as tmp:
        path = Path(tmp)
        print(f"  writing a synthetic store of {rows:,} rows ...", file=sys.stderr, flush=True)
        total = write_synthetic_store(path, rows)
        _, compact_s = _timed(lambda: store.compact(path))
        time.sleep(2.5)  # parts rewritten just now are "racily new": hashed until 2 s old
        load = os.getloadavg()[0]  # other work on the machine shrinks Dask's share of the cores
        ours, plain = [], []
        with dask.config.set(scheduler="threads", num_workers=workers):
            for _ in range(REPEAT):
                result, seconds = _timed(lambda: agg.aggregate(path, metrics=metrics))
                ours.append(seconds)
                (summary, _cube), seconds = _timed(lambda: plain_dask(path, metrics))
                plain.append(seconds)
        print(f"  project {min(ours):.1f} s, plain dask {min(plain):.1f} s", file=sys.stderr)
        (path / store.INDEX).unlink()  # the first read after a sweep: every part hashed once
        with dask.config.set(scheduler="threads", num_workers=workers):
            _, first_s = _timed(lambda: agg.aggregate(path, metrics=metrics))
    unique = rows
    if not result.scan.plain:
        raise RuntimeError("the compacted store was not read as duplicate-free")
    if not (result.cube["points"].sum() == unique == int(summary[agg.COUNT].sum())):
        raise RuntimeError("the project's and the plain aggregation disagree on the point count")
    return {
        "aggregate_store_rows": total,
        "aggregate_rows_per_s": unique / min(ours),
        "aggregate_plain_dask_rows_per_s": unique / min(plain),
        "aggregate_vs_plain_dask_ratio": min(plain) / min(ours),
        "aggregate_first_read_s": first_s,
        "aggregate_compact_s": compact_s,
        "aggregate_dask_workers": workers,
        "aggregate_load_avg_1m": load,
        "aggregate_peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS))
