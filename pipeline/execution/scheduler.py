"""The Dask scheduler: where the report's Dask work runs, and its progress on stderr.

The scheduler is chosen in the ``dask`` config section (``conf/dask/``,
:func:`scheduler`): ``threads`` (default), ``ray`` (Dask-on-Ray on the sweep's
Ray session, :mod:`pipeline.execution.raysession`: embedded or ``ray.address``
from ``conf/ray/``) or the address of a Dask distributed scheduler.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dask.callbacks import Callback

from asi_slowdown.pipeline.configuration.checks import check_scheduler
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.execution.progress import LINE_PERCENT, clock_text, is_terminal

CONNECT_TIMEOUT = "10s"
"""How long to try reaching a Dask distributed scheduler before giving up."""


# --------------------------------------------------------------------------- scheduler
@dataclass(frozen=True)
class SchedulerInfo:
    """Which scheduler ran the aggregation, for the report's provenance."""

    name: str
    workers: int
    detail: str = ""


@contextmanager
def scheduler(dask_conf, ray_conf=None) -> Iterator[SchedulerInfo]:
    """Make ``dask_conf.scheduler`` Dask's scheduler for the duration of the block.

    Parameters
    ----------
    dask_conf : DictConfig
        The ``dask`` section: ``scheduler``, ``num_workers``.
    ray_conf : DictConfig or None
        The ``ray`` section, for ``scheduler=ray``: the same embedded Ray or
        cluster address as the sweep (:func:`pipeline.execution.raysession.session`).
    """
    import dask

    name = check_scheduler(dask_conf.scheduler)
    if name == "threads":
        workers = int(dask_conf.get("num_workers") or 0) or os.cpu_count() or 1
        with dask.config.set(scheduler="threads", num_workers=workers):
            yield SchedulerInfo("threads", workers)
        return
    if name == "ray":
        # Imported here: Ray takes a second to import and most runs use threads.
        from ray.util.dask import ray_dask_get

        from asi_slowdown.pipeline.execution import raysession

        if ray_conf is None:
            raise ConfigError("dask.scheduler=ray needs the ray config section")
        with raysession.session(ray_conf) as info:
            with dask.config.set(scheduler=ray_dask_get):
                yield SchedulerInfo("ray", info.cpus, info.address)
        return
    from distributed import Client

    try:
        client = Client(name, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"dask.scheduler: cannot reach {name!r}: {first}") from None
    try:
        with dask.config.set(scheduler=client.get):
            workers = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
            yield SchedulerInfo("distributed", workers, name)
    finally:
        client.close()


class LineProgress(Callback):
    """Dask's progress as plain lines, for logs: one each :data:`LINE_PERCENT` of the tasks.

    Dask's ``ProgressBar`` redraws itself with carriage returns, which a log
    file keeps as one unreadable line (as tqdm's bar, :mod:`pipeline.execution.progress`).
    Nothing is printed for an aggregation shorter than ``minimum`` seconds.
    """

    def __init__(self, out=sys.stderr, minimum: float = 1.0) -> None:
        super().__init__()
        self._out, self._minimum = out, minimum

    def _start_state(self, dsk, state) -> None:
        self._started = time.perf_counter()
        self._next = LINE_PERCENT

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        done = len(state["finished"])
        total = done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
        percent = 100.0 * done / total if total else 100.0
        elapsed = time.perf_counter() - self._started
        if percent < self._next or elapsed < self._minimum:
            return
        self._next = (percent // LINE_PERCENT + 1) * LINE_PERCENT
        print(
            f"asi-report: aggregation {done}/{total} tasks ({percent:.0f} %), "
            f"{clock_text(elapsed)} elapsed",
            file=self._out,
            flush=True,
        )


@contextmanager
def progress(enabled: bool, out=None) -> Iterator[None]:
    """Progress on stderr for local schedulers (threads, Dask-on-Ray): Dask's bar on a
    terminal, :class:`LineProgress` lines anywhere else (cron, ``2> report.log``)."""
    if not enabled:
        yield
        return
    out = sys.stderr if out is None else out
    if is_terminal(out):
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0, out=out):
            yield
    else:
        with LineProgress(out):
            yield
