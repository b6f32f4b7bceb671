"""Ray fan-out: start or reach Ray, run chunks as tasks, collect their rows.

* :func:`session` starts an embedded local Ray (dashboard off, object store
  sized for the machine, worker logs quiet) when ``ray.address`` is null, or
  connects to a running cluster (``auto``, ``host:port``, ``ray://host:port``)
  without passing any resource settings, which belong to the cluster (and,
  if it asks for one, with this machine's token: :mod:`pipeline.sweep.rayauth`).
  A Ray already initialised in this process (tests, notebooks) is reused as is.
* :func:`dispatch` keeps at most ``max_in_flight`` tasks submitted
  (``ray.wait``, never ``ray.get`` in a loop), hands each finished chunk's rows
  to a callback as soon as it arrives, retries tasks whose worker died
  (``max_retries``) but not tasks that raised, and reports a failed chunk
  without stopping the others.
* Interrupted (Ctrl-C, ``kill -INT``) or aborted by a store error, it stops
  in order: no new task is submitted, :func:`settle` waits (bounded) for the
  tasks in flight to finish and, after an interrupt, commits their rows;
  then :func:`stop` shuts Ray down and, for an embedded Ray, waits for every
  process it started (raylet, GCS, agents, workers), ending the stragglers.
  Further Ctrl-C's are ignored meanwhile (:func:`sigint_ignored`), so none
  lands inside Ray's own shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil
import ray
from ray.exceptions import RayError, RayTaskError

from pipeline.configuration.errors import ConfigError
from pipeline.sweep import rayauth
from pipeline.sweep.chunks import Chunk, evaluate_chunk

if TYPE_CHECKING:
    from omegaconf import DictConfig

MIN_OBJECT_STORE = 256 << 20
MAX_OBJECT_STORE = 2 << 30
OBJECT_STORE_FRACTION = 0.10
"""An embedded object store gets 10 % of RAM within [256 MiB, 2 GiB]: chunks and
results are a few MB each and few are in flight, and Ray's default (30 % of
RAM) would take memory the model's workers need."""

WAIT_SECONDS = 0.5
"""How long one ``ray.wait`` may block, so the progress bar's rate and ETA stay live."""

TaskHook = Callable[[list[str]], None]
"""Test-only: called in the worker with the chunk's point ids before evaluating it."""


@dataclass(frozen=True)
class SessionInfo:
    """What the sweep learned about Ray."""

    started_here: bool
    start_seconds: float
    cpus: int
    address: str


def object_store_bytes(total_memory: int) -> int:
    """Object store size for an embedded Ray on a machine with ``total_memory`` [bytes]."""
    return int(min(MAX_OBJECT_STORE, max(MIN_OBJECT_STORE, total_memory * OBJECT_STORE_FRACTION)))


def total_memory() -> int:
    """Physical memory of this machine [bytes]."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def init_kwargs(conf: DictConfig) -> dict:
    """Keyword arguments of ``ray.init`` for the ``ray`` config section."""
    # ERROR, not WARNING: an embedded Ray's start-up notices (token auth, ...) are noise here.
    quiet = {"log_to_driver": bool(conf.log_to_driver), "logging_level": logging.ERROR}
    if conf.address is None:
        return {
            **quiet,
            "address": "local",  # start a new instance even if a `ray start` cluster runs here
            "num_cpus": conf.num_cpus or os.cpu_count(),
            "include_dashboard": False,
            "object_store_memory": conf.object_store_memory or object_store_bytes(total_memory()),
        }
    kwargs = {**quiet, "address": str(conf.address)}
    ship = conf.ship_code if conf.ship_code is not None else str(conf.address).startswith("ray://")
    if ship:
        kwargs["runtime_env"] = {"py_modules": shipped_code()}
    return kwargs


def shipped_code() -> list[str]:
    """The directories of ``model`` and ``pipeline``, as ``runtime_env`` ``py_modules``.

    Paths, not the module objects Ray also accepts: a ``ray://`` client deep-copies its
    runtime environment (the uv hook of Ray 2.60), and a module cannot be copied.
    """
    import model
    import pipeline

    return [str(Path(module.__file__).parent) for module in (model, pipeline)]


DRAIN_SECONDS = 10.0
"""How long an aborted dispatch waits for its tasks in flight to finish [s]
(:func:`settle`); past it, Ray's shutdown ends the workers."""

GRACE_SECONDS = 2.0
"""How long each step of :func:`reap` waits for an embedded Ray's processes to end [s]:
first after ``ray.shutdown`` (which ends raylet and GCS), then after SIGTERM, then after
SIGKILL. Ray's agents otherwise notice their raylet's death only after about a minute."""


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT for the block: a shutdown in progress is not cut short by another Ctrl-C.

    Python handles signals in the main thread only, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def session(conf: DictConfig) -> Iterator[SessionInfo]:
    """Ray for the duration of a sweep; shut down on exit only if started here.

    An embedded Ray (``ray.address`` null) is this process's own: its
    processes are ended with it (:func:`stop`). A cluster it connected to is
    only disconnected from, never stopped.
    """
    if ray.is_initialized():
        yield SessionInfo(False, 0.0, cluster_cpus(), "existing")
        return
    embedded = conf.address is None
    if not embedded:
        rayauth.authenticate(str(conf.address))  # a token asked for: settled now, in one line
    before = _descendants()
    start = time.perf_counter()
    try:
        _init(init_kwargs(conf))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        stop(embedded, before)
        where = conf.address or "local"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"ray.address: cannot start or reach Ray at {where!r}: {first}") from None
    except BaseException:  # interrupted while Ray starts: stop what has started
        stop(embedded, before)
        raise
    try:
        yield SessionInfo(
            True, time.perf_counter() - start, cluster_cpus(), conf.address or "local"
        )
    finally:
        stop(embedded, before)


def _descendants() -> dict[int, psutil.Process]:
    """This process's children, grandchildren, ... by pid."""
    with suppress(psutil.Error):
        return {p.pid: p for p in psutil.Process().children(recursive=True)}
    return {}


def stop(embedded: bool, before: Mapping[int, psutil.Process]) -> None:
    """``ray.shutdown()``, and for an embedded Ray, every process it started ended too.

    ``before`` are the descendants this process had before ``ray.init``: they
    are not Ray's and are left alone. Ray's are listed before the shutdown,
    while they are still descendants (a raylet's agents and workers are
    re-parented once it exits, and would be missed after).
    """
    with sigint_ignored():
        ours = []
        if embedded:
            ours = [p for pid, p in _descendants().items() if pid not in before]
        with suppress(Exception):  # shutting down: whatever Ray raises now changes nothing
            ray.shutdown()
        reap(ours)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Wait up to ``seconds`` for ``processes`` to end; those still running."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def reap(processes: list[psutil.Process], grace: float = GRACE_SECONDS) -> list[psutil.Process]:
    """End ``processes``: wait ``grace``, then SIGTERM, then SIGKILL; those that outlived all.

    ``psutil.Process`` checks a pid still names the process it was created
    for, so a pid reused meanwhile is never signalled.
    """
    alive = _wait_gone(processes, grace)
    for ending in (psutil.Process.terminate, psutil.Process.kill):
        for process in alive:
            with suppress(psutil.Error):
                ending(process)
        alive = _wait_gone(alive, grace)
    return alive


CLIENT_ATTEMPTS = 4
"""Connections tried through ``ray://`` before giving up: a head that has just started
accepts clients before its runtime-env agent is up, and the first one fails with
"Initialization failure from server"."""


def _init(kwargs: dict) -> None:
    for attempt in range(CLIENT_ATTEMPTS):
        try:
            ray.init(**kwargs)
            return
        except ConnectionError as exc:
            client = str(kwargs.get("address", "")).startswith("ray://")
            if not client or "Initialization failure" not in str(exc):
                raise
            if attempt == CLIENT_ATTEMPTS - 1:
                raise
            time.sleep(2.0 * (attempt + 1))


def cluster_cpus() -> int:
    """CPUs the cluster offers to tasks (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _evaluate(points, payload, hook):
    """The task body: rows for one chunk, plus where and how long it ran."""
    profile, costs = payload
    if hook is not None:
        hook(points.column("point_id").to_pylist())
    timings: dict[str, float] = {}
    rows = evaluate_chunk(points, profile, costs, timings)
    info = {
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "seconds": timings["model_s"],  # the model alone: the rest is sweep overhead
    }
    return rows, info


evaluate_task = ray.remote(num_cpus=1)(_evaluate)


def warm_up(chunk: Chunk, payload: ray.ObjectRef, workers: int) -> None:
    """Run the real task once per worker on a one-point chunk, and discard the rows.

    Part of an embedded Ray's start-up: workers are spawned, import numpy,
    pyarrow and the model, and load the task function (~0.5 s, paid once per
    session). Without it the first chunks absorb that cost, and the progress
    bar's first rates mislead.
    """
    refs = [evaluate_task.remote(chunk.points, payload, None) for _ in range(workers)]
    try:
        ray.get(refs)
    except BaseException:  # interrupted during start-up: let them finish before Ray stops
        settle(dict.fromkeys(refs, chunk), DispatchStats(), None)
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
    chunks: Iterator[Chunk],
    payloads: Mapping[int, ray.ObjectRef],
    *,
    on_rows: Callable,
    max_in_flight: int,
    max_retries: int,
    progress=None,
    hook: TaskHook | None = None,
) -> DispatchStats:
    """Run every chunk as a task; call ``on_rows(rows)`` in the driver as each finishes.

    Parameters
    ----------
    chunks : iterator of Chunk
        Consumed lazily: only ``max_in_flight`` chunks exist at once.
    payloads : mapping of profile index to ObjectRef
        ``(Profile, costs)``, put in the object store once per profile.
    on_rows : callable
        Receives each chunk's rows (a ``pyarrow.Table``); it may raise to abort.
    max_in_flight : int
        Tasks submitted and not yet collected.
    max_retries : int
        Reruns of a task whose worker process died.
    progress : tqdm-like or None
        Updated with the points of each finished chunk.
    hook : callable or None
        Test-only fault injection, see :data:`TaskHook`.
    """
    # SPREAD: chunks are independent and CPU-bound, so a cluster's nodes should share them
    # from the first wave; Ray's default packs tasks on the driver's node first.
    task = evaluate_task.options(
        max_retries=max_retries, retry_exceptions=False, scheduling_strategy="SPREAD"
    )
    stats = DispatchStats()
    in_flight: dict[ray.ObjectRef, Chunk] = {}
    pending = iter(chunks)
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < max_in_flight:
                chunk = next(pending, None)
                if chunk is None:
                    exhausted = True
                    break
                in_flight[task.remote(chunk.points, payloads[chunk.profile], hook)] = chunk
            if not in_flight:
                break
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_SECONDS)
            for ref in done:
                _collect(ref, in_flight.pop(ref), stats, on_rows, progress)
            if progress is not None and not done:
                progress.refresh()  # no chunk finished: keep elapsed time and ETA moving
    except BaseException as exc:  # aborted (Ctrl-C, a store error): stop in order
        keep = on_rows if isinstance(exc, KeyboardInterrupt) else None
        settle(in_flight, stats, keep, progress)
        raise
    return stats


def settle(
    in_flight: dict[ray.ObjectRef, Chunk],
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
    one of the crashes of interrupted sweeps). Chunks are sized to take about
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
                chunk = in_flight.pop(ref)
                if on_rows is None:
                    continue
                try:
                    _collect(ref, chunk, stats, on_rows, progress)
                except BaseException:  # the store failed too: stop committing, still wait
                    on_rows = None


def _collect(ref, chunk: Chunk, stats: DispatchStats, on_rows, progress) -> None:
    stats.chunks += 1
    try:
        rows, info = ray.get(ref)
    except RayError as exc:
        stats.failures.append(
            {"point_ids": chunk.point_ids, "error": failure_message(exc), "profile": chunk.profile}
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
        progress.update(chunk.points.num_rows)


def put_payloads(profiles, needed: np.ndarray) -> dict[int, ray.ObjectRef]:
    """``ray.put`` each needed profile and its cost draws once (never per task)."""
    return {int(i): ray.put((profiles[i], profiles[i].costs())) for i in needed}
