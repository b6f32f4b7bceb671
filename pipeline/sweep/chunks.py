"""Cutting a grid into chunks, and evaluating one chunk into store rows.

Everything here is plain Python and numpy, so the Ray task
(:mod:`pipeline.sweep.dispatch`) is a thin wrapper and tests can call it directly.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from asi_slowdown.model import MODEL_VERSION
from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.params import INT_PARAMS, POINT_PARAMS
from asi_slowdown.pipeline.store.parts import constant
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS, ROW_COLUMNS, STORE_SCHEMA
from asi_slowdown.pipeline.sweep.points import Profile, point_columns

ROW_SCHEMA = pa.schema([STORE_SCHEMA.field(name) for name in ROW_COLUMNS])
"""The columns a worker returns: :data:`~pipeline.store.schema.STORE_SCHEMA` up to ``config_hash``."""

BALANCE_CHUNKS_PER_WORKER = 4
"""Cap chunk size so each worker gets at least this many chunks: the last
chunks then finish close together instead of one worker running alone."""

PROBE_POINTS = 512
"""Points evaluated in the driver to measure the model's speed [points]."""


@dataclass(frozen=True)
class Chunk:
    """Consecutive grid rows of one profile, compacted so pickling ships only these rows."""

    profile: int
    points: pa.Table

    @property
    def point_ids(self) -> list[str]:
        return self.points.column("point_id").to_pylist()


@dataclass(frozen=True)
class Batch:
    """Consecutive chunks one task evaluates.

    A grid over several config groups has many profiles of few points each (the default
    experiment: 216 of 112), and Ray's cost per task (about 10 ms here, a round trip
    through the object store) would exceed the model's 5 ms per such chunk. Chunks stay
    one profile each (rows are evaluated per profile); a batch carries several.
    """

    chunks: tuple[Chunk, ...]

    @property
    def profiles(self) -> list[int]:
        """The chunks' profiles, each once, in order."""
        return list(dict.fromkeys(c.profile for c in self.chunks))

    @property
    def num_rows(self) -> int:
        return sum(c.points.num_rows for c in self.chunks)

    @property
    def point_ids(self) -> list[str]:
        return [pid for c in self.chunks for pid in c.point_ids]


def iter_batches(chunks: Iterator[Chunk], size: int) -> Iterator[Batch]:
    """``chunks`` gathered in order into batches of at most ``size`` points (a chunk larger
    than ``size`` is a batch of its own; :func:`iter_chunks` never makes one)."""
    pending: list[Chunk] = []
    rows = 0
    for chunk in chunks:
        n = chunk.points.num_rows
        if pending and rows + n > size:
            yield Batch(tuple(pending))
            pending, rows = [], 0
        pending.append(chunk)
        rows += n
    if pending:
        yield Batch(tuple(pending))


def evaluate_chunk(
    points: pa.Table,
    profile: Profile,
    costs: Mapping[str, np.ndarray],
    timings: dict | None = None,
) -> pa.Table:
    """Store rows (:data:`ROW_SCHEMA`) for grid ``points`` of one ``profile``.

    One :func:`model.evaluate.evaluate` call over (points x samples). ``costs``
    are the profile's draws (:meth:`Profile.costs`); passing them in keeps a
    chunk's result independent of where and with what else it runs. If given,
    ``timings["model_s"]`` receives the time spent in the model alone [s].
    """
    if profile.model_version != MODEL_VERSION:
        # Point ids hash the driver's model version: rows from other code would lie.
        raise RuntimeError(
            f"worker runs model {MODEL_VERSION}, the sweep was planned with {profile.model_version}"
        )
    n = points.num_rows
    cols = point_columns(points, profile)
    start = time.perf_counter()
    metrics = evaluate(cols, costs)
    if timings is not None:
        timings["model_s"] = time.perf_counter() - start
    if set(metrics) != set(METRIC_COLUMNS):
        raise RuntimeError(
            "asi_slowdown.model.evaluate's outputs no longer match store.METRIC_COLUMNS: "
            f"{sorted(set(metrics) ^ set(METRIC_COLUMNS))}"
        )
    arrays = {
        "point_id": points.column("point_id"),
        "workload": constant(profile.workload, n),
        "cpu": constant(profile.cpu, n),
        "mitigations": constant(profile.mitigations, n),
        **{
            name: cols[name].astype(np.int64) if name in INT_PARAMS else cols[name]
            for name in POINT_PARAMS
        },
        "seed": np.full(n, profile.seed, dtype=np.int64),
        "samples": np.full(n, profile.samples, dtype=np.int64),
        "cost_profile": constant(profile.cost_profile, n),
        "profile_overrides": constant(profile.profile_overrides, n),
        **{name: np.asarray(metrics[name], dtype=np.float64) for name in METRIC_COLUMNS},
        "model_version": constant(MODEL_VERSION, n),
        "config_hash": constant(profile.config_hash, n),
    }
    return pa.table(arrays, schema=ROW_SCHEMA)


def measure_points_per_second(points: pa.Table, profile: Profile) -> float:
    """The model's speed on this machine for this profile [points/s, one core].

    Times one evaluation of up to :data:`PROBE_POINTS` of the grid's own
    points (speed scales with the sample count, so a fixed guess would not do).
    """
    probe = points.slice(0, PROBE_POINTS)
    cols = point_columns(probe, profile)
    costs = profile.costs()
    # One point first, untimed: the first call in a process loads the compiled model
    # (about 0.5 s), which would make the speed look 20 times slower and the chunks tiny.
    evaluate({k: v[:1] for k, v in cols.items()}, costs)
    start = time.perf_counter()
    evaluate(cols, costs)
    return probe.num_rows / max(time.perf_counter() - start, 1e-6)


def chunk_size(
    n_points: int,
    workers: int,
    points_per_second: float,
    target_task_seconds: float,
    max_chunk_points: int,
) -> int:
    """Points per task: about ``target_task_seconds`` of work, balanced over ``workers``.

    Parameters
    ----------
    n_points : int
        Points to compute.
    workers : int
        Ray CPUs that run tasks.
    points_per_second : float
        Model speed of one worker [points/s].
    target_task_seconds : float
        Wanted task duration [s]: long enough that Ray's ~1 ms per task is noise.
    max_chunk_points : int
        Upper bound [points], which bounds memory per task and per result.
    """
    by_time = max(1, int(points_per_second * target_task_seconds))
    balanced = max(1, math.ceil(n_points / (max(workers, 1) * BALANCE_CHUNKS_PER_WORKER)))
    return max(1, min(by_time, balanced, max_chunk_points))


def iter_chunks(points: pa.Table, size: int) -> Iterator[Chunk]:
    """Chunks of at most ``size`` consecutive rows, never spanning two profiles.

    ``points`` must be ordered by profile (as :func:`pipeline.sweep.grid.build_grid`
    makes it). Each chunk is a compact copy (``take``): a pickled slice would
    ship its parent's whole buffers.
    """
    profiles = points.column("profile").to_numpy()
    bounds = [0, *(np.flatnonzero(np.diff(profiles)) + 1).tolist(), len(profiles)]
    for start, stop in itertools.pairwise(bounds):
        for lo in range(start, stop, size):
            hi = min(lo + size, stop)
            yield Chunk(int(profiles[lo]), points.take(pa.array(np.arange(lo, hi))))
