"""The Ray session: start or reach Ray for a sweep (or Dask-on-Ray), stop it in order.

* :func:`session` starts an embedded local Ray (dashboard off, object store
  sized for the machine, worker logs quiet) when ``ray.address`` is null, or
  connects to a running cluster (``auto``, ``host:port``, ``ray://host:port``)
  without passing any resource settings, which belong to the cluster (and,
  if it asks for one, with this machine's token: :mod:`pipeline.execution.rayauth`).
  A Ray already initialised in this process (tests, notebooks) is reused as is.
* :class:`EarlyStart` starts an embedded Ray in a thread, so that its start-up overlaps
  other work of the driver (the sweep's grid expansion).
* On the way out (done, interrupted or failed), :func:`stop` shuts Ray down
  and, for an embedded Ray, waits for every process it started (raylet, GCS,
  agents, workers), ending the stragglers (:func:`reap`). Further Ctrl-C's
  are ignored meanwhile (:func:`sigint_ignored`), so none lands inside Ray's
  own shutdown.

What runs on the session is its users' business: the sweep's chunks as tasks
(:mod:`pipeline.sweep.dispatch`), the report's Dask graph
(:func:`pipeline.execution.scheduler.scheduler` with ``dask.scheduler=ray``).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import ray

from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.execution import rayauth

if TYPE_CHECKING:
    from omegaconf import DictConfig

MIN_OBJECT_STORE = 256 << 20
MAX_OBJECT_STORE = 2 << 30
OBJECT_STORE_FRACTION = 0.10
"""An embedded object store gets 10 % of RAM within [256 MiB, 2 GiB]: chunks and
results are a few MB each and few are in flight, and Ray's default (30 % of
RAM) would take memory the model's workers need."""


@dataclass(frozen=True)
class SessionInfo:
    """What the sweep learned about Ray."""

    started_here: bool
    start_seconds: float  # how long the caller waited for Ray to start [s]
    cpus: int
    address: str
    beside_seconds: float = 0.0  # an EarlyStart's whole start, overlapping other work [s]


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


@functools.cache
def shipped_code() -> list[str]:
    """The code a cluster's workers get, as ``runtime_env`` ``py_modules``: one directory,
    ``asi_slowdown``, holding ``model`` and ``pipeline``.

    Ray ships a directory under its own name, and the code's import names are
    ``asi_slowdown.model`` and ``asi_slowdown.pipeline`` (in a checkout the folders are
    ``model/`` and ``pipeline/``), so both are copied under that name into a scratch
    directory, once per process however often Ray is reached, and removed when the process
    ends. Paths, not the module objects Ray also accepts: a ``ray://`` client deep-copies
    its runtime environment (the uv hook of Ray 2.60), and a module cannot be copied.
    """
    from asi_slowdown import model, pipeline

    scratch = Path(tempfile.mkdtemp(prefix="asi-slowdown-code-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    for module in (model, pipeline):
        shutil.copytree(
            Path(module.__file__).parent,
            scratch / "asi_slowdown" / module.__name__.rpartition(".")[2],
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    return [str(scratch / "asi_slowdown")]


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


def _start(conf: DictConfig) -> tuple[SessionInfo, dict[int, psutil.Process]]:
    """Start or reach Ray (``ray.init``); what was started, and this process's descendants
    from before (they are not Ray's). Whatever fails stops what had started."""
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
    info = SessionInfo(True, time.perf_counter() - start, cluster_cpus(), conf.address or "local")
    return info, before


@contextmanager
def session(conf: DictConfig, early: EarlyStart | None = None) -> Iterator[SessionInfo]:
    """Ray for the duration of a sweep; shut down on exit only if started here.

    An embedded Ray (``ray.address`` null) is this process's own: its
    processes are ended with it (:func:`stop`). A cluster it connected to is
    only disconnected from, never stopped. ``early``: the embedded Ray an
    :class:`EarlyStart` is starting for this session (waited for here).
    """
    if early is not None:
        waited = time.perf_counter()
        info, before = early.result()
        # what the start added to the sweep's wall time: the rest overlapped other work
        info = replace(
            info, start_seconds=time.perf_counter() - waited, beside_seconds=info.start_seconds
        )
    elif ray.is_initialized():
        yield SessionInfo(False, 0.0, cluster_cpus(), "existing")
        return
    else:
        info, before = _start(conf)
    try:
        yield info
    finally:
        stop(conf.address is None, before)
        if early is not None:
            early.release()


class _QuietThreadWarning(logging.Filter):
    """Drops ``ray.init``'s warning that a thread other than the main one cannot set its
    SIGTERM handler: :class:`EarlyStart` sets the same handler from the main thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _exit_on_sigterm(signum, frame):
    sys.exit(signum)  # as ray.init's own handler: the finally blocks run, Ray is stopped


class EarlyStart:
    """An embedded Ray started in a thread while the main thread does other work.

    ``ray.init`` spends its seconds waiting for the processes it spawns (GCS, raylet,
    agents), which the grid's expansion can use. Started only when the sweep will surely
    need Ray (:func:`pipeline.sweep.run.run` decides). Call :meth:`result` to take the
    session (then :func:`session` stops it), or :meth:`cancel` to stop it unused; both
    wait for the start to finish.

    The thread outlives the start and ends only once Ray is stopped (:meth:`release`):
    Ray spawns its GCS and raylet with a parent-death signal, which Linux sends when the
    *thread* that spawned them exits, so an ended thread would take Ray down with it.
    """

    def __init__(self, conf: DictConfig) -> None:
        if conf.address is not None:
            raise ValueError("EarlyStart starts an embedded Ray only (ray.address null)")
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        self._conf = conf
        self._outcome: tuple[SessionInfo, dict] | BaseException | None = None
        self._taken = False
        self._started = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asi-ray-start", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        quiet = _QuietThreadWarning()
        logger = logging.getLogger("ray._private.worker")
        logger.addFilter(quiet)
        try:
            self._outcome = _start(self._conf)
        except BaseException as exc:  # handed to the main thread by result()
            self._outcome = exc
        finally:
            logger.removeFilter(quiet)
            self._started.set()
        if not isinstance(self._outcome, BaseException):
            self._stopped.wait()  # see the class docstring: Ray's processes are this thread's

    def result(self) -> tuple[SessionInfo, dict[int, psutil.Process]]:
        """Wait for the start; the session and the descendants from before, or its error."""
        self._started.wait()
        self._taken = True
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome

    def release(self) -> None:
        """Let the thread end: call once Ray is stopped."""
        self._stopped.set()
        self._thread.join()

    def cancel(self) -> None:
        """Stop the Ray started for nothing (bad input, nothing new, an interrupt); a no-op
        once :meth:`result` took it. Ctrl-C does not cut the wait short."""
        if self._taken:
            return
        self._taken = True
        with sigint_ignored():
            self._started.wait()
            if not isinstance(self._outcome, BaseException):
                stop(True, self._outcome[1])
            self.release()


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
