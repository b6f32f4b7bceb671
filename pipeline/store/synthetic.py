"""A store of made-up results at any size, for measuring what reads it.

The report's memory and speed are measured at the nightly preset's size and beyond
(``benchmarks/bench_report_memory.py``, ``tests/pipeline/test_report_memory.py``), where
sweeping the points would take minutes and prove nothing more: only the store's shape
matters. :func:`write_synthetic_store` writes committed parts the way a sweep does, one
point per cell of the report's cube, with uniform random metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from asi_slowdown.pipeline.store.parts import content_digest, encode_part, part_name
from asi_slowdown.pipeline.store.schema import STORE_SCHEMA

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
"""Every synthetic row's ``created_at`` (and its parts' commit time in their names)."""


def write_synthetic_store(
    path: Path,
    rows: int,
    *,
    columns: Sequence[str],
    workloads: Sequence[str],
    cpus: Sequence[str],
    stages: Sequence[str],
    file_sizes: Sequence[int],
    slots: Sequence[int] = (1, 2, 4, 8),
    part_rows: int = 100_000,
    seed: int = 0,
) -> None:
    """Write ``rows`` points into ``path`` (an existing directory) as committed parts of
    ``part_rows``.

    Point ``i`` is the ``i``-th cell of slot count x file size [bytes] x stage x CPU
    profile x workload, the fastest first, and the CPU count is how many times the cells
    have wrapped (1, 2, ...), so every point is its own cube cell. ``columns`` are the store
    columns written (the ids' and labels' and whatever the reader needs); every one of them
    that is not a label or a parameter above gets uniform random values in [0, 0.2) from a
    generator seeded with ``seed``, so the same arguments write the same bytes.
    """
    rng = np.random.default_rng(seed)
    schema = pa.schema([STORE_SCHEMA.field(c) for c in columns])
    created = np.datetime64(CREATED.replace(tzinfo=None), "us")
    for seq, start in enumerate(range(0, rows, part_rows)):
        cell = np.arange(start, min(rows, start + part_rows))
        n = len(cell)
        point_ids = pa.array([f"{i:032x}" for i in cell])
        slot, cell = cell % len(slots), cell // len(slots)
        size, cell = cell % len(file_sizes), cell // len(file_sizes)
        stage, cell = cell % len(stages), cell // len(stages)
        cpu, cell = cell % len(cpus), cell // len(cpus)
        workload, count = cell % len(workloads), cell // len(workloads) + 1
        data = {
            "point_id": point_ids,
            "created_at": pa.array(np.full(n, created)),
            "run_id": pa.array(["run0"] * n),
            "workload": pa.array(np.asarray(workloads)[workload]),
            "cpu": pa.array(np.asarray(cpus)[cpu]),
            "mitigations": pa.array(np.asarray(stages)[stage]),
            "cpus": count,
            "file_size": np.asarray(file_sizes, dtype=np.int64)[size],
            "ephmap_slots": np.asarray(slots, dtype=np.int64)[slot],
        }
        for name in columns:
            if name not in data:
                data[name] = rng.uniform(0.0, 0.2, n)
        encoded = encode_part(pa.table(data).cast(schema))
        (path / part_name("run0", seq, CREATED, content_digest(encoded))).write_bytes(encoded)
