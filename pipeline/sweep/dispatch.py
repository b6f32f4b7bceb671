"""The sweep's chunks as Ray tasks: bounded dispatch, retries, rows as they arrive.

Runs on a Ray session (:func:`pipeline.execution.raysession.session`):

* :func:`put_payloads` puts each profile and its cost draws in the object
  store once; :func:`warm_up` starts the workers before the clock runs;
* :func:`dispatch` runs each :class:`~pipeline.sweep.chunks.Batch` of chunks as one
  task, keeps at most ``max_in_flight`` tasks submitted
  (``ray.wait``, never ``ray.get`` in a loop), hands each finished batch's rows
  to a callback as soon as it arrives, retries tasks whose worker died
  (``max_retries``) but not tasks that raised, and reports a failed batch
  without stopping the others;
* interrupted (Ctrl-C, ``kill -INT``) or aborted by a store error, it stops
  in order: no new task is submitted, :func:`settle` waits (bounded) for the
  tasks in flight to finish and, after an interrupt, commits their rows;
  then the session stops Ray (:func:`pipeline.execution.raysession.stop`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import ray
from ray.exceptions import RayError, RayTaskError

from asi_slowdown.pipeline.execution.raysession import sigint_ignored
from asi_slowdown.pipeline.sweep.chunks import Batch, evaluate_chunk

WAIT_SECONDS = 0.5
"""How long one ``ray.wait`` may block, so the progress bar's rate and ETA stay live."""

DRAIN_SECONDS = 10.0
"""How long an aborted dispatch waits for its tasks in flight to finish [s]
(:func:`settle`); past it, Ray's shutdown ends the workers."""

TaskHook = Callable[[list[str]], None]
"""Test-only: called in the worker with the batch's point ids before evaluating it."""


def _evaluate(pieces, hook, *objects):
    """The task body: rows for one batch, plus where and how long it ran.

    ``pieces`` are the batch's chunks as ``(points, p, c)``, ``p`` and ``c`` indexing
    ``objects`` for the chunk's :class:`~pipeline.sweep.points.Profile` and cost draws
    (Ray resolves them because they are arguments of their own, not inside a list)."""
    if hook is not None:
        hook([pid for points, _, _ in pieces for pid in points.column("point_id").to_pylist()])
    seconds = 0.0
    rows = []
    for points, p, c in pieces:
        profile, costs = objects[p], objects[c]
        timings: dict[str, float] = {}
        rows.append(evaluate_chunk(points, profile, costs, timings))
        seconds += timings["model_s"]
    info = {
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "seconds": seconds,  # the model alone: the rest is sweep overhead
    }
    return pa.concat_tables(rows), info


evaluate_task = ray.remote(num_cpus=1)(_evaluate)


Payload = tuple[ray.ObjectRef, ray.ObjectRef]
"""A profile's refs in the object store: the :class:`~pipeline.sweep.points.Profile`, its
cost draws (:func:`put_payloads`)."""


def submit(task, batch: Batch, payloads: Mapping[int, Payload], hook=None):
    """``task`` (:data:`evaluate_task` with options) on ``batch``: one ref for its rows.
    Each distinct object goes once: the batch's profiles often share their draws."""
    objects: dict[ray.ObjectRef, int] = {}
    pieces = [
        (c.points, *(objects.setdefault(ref, len(objects)) for ref in payloads[c.profile]))
        for c in batch.chunks
    ]
    return task.remote(pieces, hook, *objects)


def warm_up(batch: Batch, payloads: Mapping[int, Payload], workers: int) -> None:
    """Run the real task once per worker on a one-point batch, and discard the rows.

    Part of an embedded Ray's start-up: workers are spawned, import numpy,
    pyarrow and the model, and load the task function (~0.5 s, paid once per
    session). Without it the first chunks absorb that cost, and the progress
    bar's first rates mislead.
    """
    refs = [submit(evaluate_task, batch, payloads) for _ in range(workers)]
    try:
        ray.get(refs)
    except BaseException:  # interrupted during start-up: let them finish before Ray stops
        settle(dict.fromkeys(refs, batch), DispatchStats(), None)
        raise


@dataclass
class DispatchStats:
    """What happened to the chunks."""

    chunks: int = 0
    points_done: int = 0
    model_seconds: float = 0.0
    nodes: dict[str, int] = field(default_factory=dict)
    workers: set[tuple[str, int]] = field(default_factory=set)
    failures: list[dict] = field(default_factory=list)

    @property
    def failed_point_ids(self) -> list[str]:
        return [pid for f in self.failures for pid in f["point_ids"]]


def failure_message(exc: BaseException) -> str:
    """One line for a failed task: the task's own exception if it raised, else Ray's."""
    cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def dispatch(
    batches: Iterator[Batch],
    payloads: Mapping[int, Payload],
    *,
    on_rows: Callable,
    max_in_flight: int,
    max_retries: int,
    progress=None,
    hook: TaskHook | None = None,
) -> DispatchStats:
    """Run every batch as a task; call ``on_rows(rows)`` in the driver as each finishes.

    Parameters
    ----------
    batches : iterator of Batch
        Consumed lazily: only ``max_in_flight`` batches exist at once.
    payloads : mapping of profile index to Payload
        Refs of the profile and its cost draws (:func:`put_payloads`).
    on_rows : callable
        Receives each batch's rows (a ``pyarrow.Table``); it may raise to abort.
    max_in_flight : int
        Tasks submitted and not yet collected.
    max_retries : int
        Reruns of a task whose worker process died.
    progress : tqdm-like or None
        Updated with the points of each finished batch.
    hook : callable or None
        Test-only fault injection, see :data:`TaskHook`.
    """
    # SPREAD: chunks are independent and CPU-bound, so a cluster's nodes should share them
    # from the first wave; Ray's default packs tasks on the driver's node first.
    task = evaluate_task.options(
        max_retries=max_retries, retry_exceptions=False, scheduling_strategy="SPREAD"
    )
    stats = DispatchStats()
    in_flight: dict[ray.ObjectRef, Batch] = {}
    pending = iter(batches)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < max_in_flight:
                batch = next(pending, None)
                if batch is None:
                    exhausted = True
                    break
                in_flight[submit(task, batch, payloads, hook)] = batch
            if not in_flight:
                break
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_SECONDS)
            for ref in done:
                _collect(ref, in_flight.pop(ref), stats, on_rows, progress)
            if progress is not None and not done:
                progress.refresh()  # no batch finished: keep elapsed time and ETA moving
    except BaseException as exc:  # aborted (Ctrl-C, a store error): stop in order
        keep = on_rows if isinstance(exc, KeyboardInterrupt) else None
        settle(in_flight, stats, keep, progress)
        raise
    return stats


def settle(
    in_flight: dict[ray.ObjectRef, Batch],
    stats: DispatchStats,
    on_rows: Callable | None,
    progress=None,
    timeout: float = DRAIN_SECONDS,
) -> None:
    """Let the tasks in flight finish on their own (at most ``timeout`` s), then return.

    What an aborted dispatch does before Ray is shut down. The tasks are not
    cancelled: ``ray.cancel`` can mark a task cancelled while its worker
    still starts it, and the worker's late reply then makes Ray's C++ core
    worker abort the driver ("Tried to complete task that was not pending",
    one of the crashes of interrupted sweeps). Batches are sized to take about
    ``sweep.target_task_seconds``, so this waits about two of them. Rows
    that arrive go to ``on_rows`` (an interrupt keeps them); with
    ``on_rows`` None (the store failed) they are dropped, and so are later
    ones if ``on_rows`` fails. Past ``timeout`` the rest is left to Ray's
    shutdown, which ends the workers.
    """
    deadline = time.monotonic() + timeout
    with sigint_ignored():
        while in_flight and (left := deadline - time.monotonic()) > 0:
            try:
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(left, WAIT_SECONDS))
            except Exception:  # Ray itself is failing: nothing left to wait for
                return
            for ref in done:
                batch = in_flight.pop(ref)
                if on_rows is None:
                    continue
                try:
                    _collect(ref, batch, stats, on_rows, progress)
                except BaseException:  # the store failed too: stop committing, still wait
                    on_rows = None


def _collect(ref, batch: Batch, stats: DispatchStats, on_rows, progress) -> None:
    stats.chunks += 1
    try:
        rows, info = ray.get(ref)
    except RayError as exc:
        stats.failures.append(
            {
                "point_ids": batch.point_ids,
                "error": failure_message(exc),
                "profiles": batch.profiles,
            }
        )
        if progress is not None:
            progress.set_postfix(failed=len(stats.failed_point_ids), refresh=False)
    else:
        on_rows(rows)
        stats.points_done += rows.num_rows
        stats.model_seconds += info["seconds"]
        stats.nodes[info["node_id"]] = stats.nodes.get(info["node_id"], 0) + 1
        stats.workers.add((info["node_id"], info["pid"]))
    if progress is not None:
        progress.update(batch.num_rows)


def put_payloads(profiles, needed: np.ndarray) -> dict[int, Payload]:
    """``ray.put`` each needed profile once, and each distinct set of cost draws once:
    profiles of one CPU profile, seed and sample count draw the same costs (the default
    experiment's 216 profiles have 3 sets of 0.36 MB), never per task."""
    draws: dict[tuple, ray.ObjectRef] = {}
    payloads = {}
    for i in needed:
        profile = profiles[i]
        key = (profile.cost_profile, profile.samples, profile.seed)
        if key not in draws:
            draws[key] = ray.put(profile.costs())
        payloads[int(i)] = (ray.put(profile), draws[key])
    return payloads
