"""Aggregating the results store: Dask threads vs single-threaded pandas on 10^7 rows.

A synthetic store shaped like a nightly sweep repeated over many seeds
(5 workloads x 3 CPU profiles x 7 stages x 64 CPU counts x 8 file sizes x
4 slot counts = 215,040 cube cells, ~47 rows each) is written to a temporary
directory as part files of 500,000 rows, with 0.1 % of the points stored
twice so the dedup path runs. Both runs compute the same aggregation
(:func:`pipeline.aggregate.aggregate` and its plain-pandas reference
:func:`pipeline.aggregate.aggregate_pandas`): read with filter pushdown, one
row per point, the per-stage summary and the cube of the headline metrics
(slowdown and throughput-loss quantiles).

Keys: ``aggregate_rows_per_s`` (Dask threads, every core), ``aggregate_pandas_rows_per_s``,
``aggregate_vs_pandas_ratio`` (pandas time / Dask time: > 1 means Dask is
faster), ``aggregate_peak_rss_mb``, ``aggregate_store_rows``, and the context
to read them in: ``aggregate_dask_workers`` and ``aggregate_load_avg_1m`` (the
machine's load when the run started: on 2 cores, another busy process leaves
Dask one core and the ratio near 1). Best of two runs each.
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
import pyarrow.parquet as pq

from pipeline.report import aggregate as agg
from pipeline import store
from pipeline.store.schema import STORE_SCHEMA

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

COLUMNS = tuple(dict.fromkeys([*agg.DEDUP_COLUMNS, *agg.CUBE_KEYS, "seed", *agg.HEADLINE_METRICS]))
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
    return pa.table(columns).cast(SCHEMA)


def write_synthetic_store(path: Path, rows: int = ROWS, part_rows: int = PART_ROWS) -> int:
    """Write the synthetic store; returns the rows written (duplicates included)."""
    rng = np.random.default_rng(20260101)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    written = 0
    for seq, start in enumerate(range(0, rows, part_rows)):
        table = synthetic_rows(start, min(part_rows, rows - start), rng, created)
        pq.write_table(table, path / store.part_name("run0", seq, created), compression="zstd")
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
        pq.write_table(dup, path / store.part_name("run1", seq, later), compression="zstd")
        written += dup.num_rows
    return written


REPEAT = 2
"""Runs of each side; the best counts (the first also pays imports and cold caches)."""


def _best(fn, repeat: int = REPEAT):
    """The result of ``fn`` and its best wall time [s] over ``repeat`` runs."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def _single_threaded(fn):
    """Run ``fn`` with Arrow's own thread pools at one thread (the pandas baseline)."""
    threads = pa.cpu_count(), pa.io_thread_count()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    try:
        return fn()
    finally:
        pa.set_cpu_count(threads[0])
        pa.set_io_thread_count(threads[1])


def run(rows: int = ROWS) -> dict:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="asi-bench-store-") as tmp:
        path = Path(tmp)
        print(f"  writing a synthetic store of {rows:,} rows ...", file=sys.stderr, flush=True)
        total = write_synthetic_store(path, rows)
        metrics = agg.HEADLINE_METRICS
        load = os.getloadavg()[0]  # other work on the machine shrinks Dask's share of the cores
        with dask.config.set(scheduler="threads", num_workers=workers):
            fast, dask_s = _best(lambda: agg.aggregate(path, metrics=metrics))
        print(f"  dask threads ({workers}): {dask_s:.1f} s", file=sys.stderr, flush=True)
        slow, pandas_s = _best(
            lambda: _single_threaded(lambda: agg.aggregate_pandas(path, metrics=metrics))
        )
        print(f"  pandas, one thread: {pandas_s:.1f} s", file=sys.stderr, flush=True)
    if not (fast.cube["points"].sum() == slow.cube["points"].sum() == rows):
        raise RuntimeError("Dask and pandas aggregations disagree on the point count")
    return {
        "aggregate_store_rows": total,
        "aggregate_rows_per_s": total / dask_s,
        "aggregate_pandas_rows_per_s": total / pandas_s,
        "aggregate_vs_pandas_ratio": pandas_s / dask_s,
        "aggregate_dask_workers": workers,
        "aggregate_load_avg_1m": load,
        "aggregate_peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS))
