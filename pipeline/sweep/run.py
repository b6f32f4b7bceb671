"""Run a sweep: validate and expand the grid, skip stored points, compute the rest on Ray.

:func:`sweep` is what ``asi-sweep`` does (:mod:`pipeline.cli.sweep`) and what
tests and notebooks call; :func:`run` is the part the Hydra sweeper plugin
(:mod:`pipeline.sweep.sweeper`) shares with it. Every point lands in the
Parquet store (``store.path``); points already there are skipped. The sweep
directory (``hydra.sweep.dir``) keeps ``multirun.yaml`` and ``summary.json``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import DictConfig, OmegaConf

import asi_slowdown.pipeline.store as results_store
from asi_slowdown.pipeline.configuration.checks import check_execution, check_launcher
from asi_slowdown.pipeline.configuration.compose import Composer
from asi_slowdown.pipeline.configuration.compose import composer as default_composer
from asi_slowdown.pipeline.configuration.errors import EXIT_FAILED, ConfigError, one_line
from asi_slowdown.pipeline.configuration.sweeps import (
    check_params_override,
    dimensions_text,
    sweeper_params,
)
from asi_slowdown.pipeline.execution.memory import peak_rss_bytes
from asi_slowdown.pipeline.execution.progress import progress_bar
from asi_slowdown.pipeline.sweep.chunks import (
    chunk_size,
    iter_batches,
    iter_chunks,
    measure_points_per_second,
)
from asi_slowdown.pipeline.sweep.grid import Grid, build_grid

EXIT_FAILED_POINTS = EXIT_FAILED
"""Some chunks failed: their ids are in ``summary.json``; rerun to retry them."""
MAX_IDS_SHOWN = 10
"""Point ids printed per failed chunk; all of them go to ``summary.json``."""
GRID_LINE_PERCENT = 25
GRID_LINE_SECONDS = 10.0
"""In a log, a line per this share of the grid's expansion [%], and at least this often [s]:
it takes seconds, not hours, and its first steps (Hydra composing) are the slowest."""

Out = Callable[[str], None]


@dataclass
class SweepResult:
    """What one sweep did; written as ``summary.json``."""

    run_id: str
    store: str
    points: int
    profiles: int
    new: int
    already_in_store: int
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    chunk_size: int = 0
    chunks: int = 0
    nodes: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    parts: list[str] = field(default_factory=list)
    unreadable_parts: list[str] = field(default_factory=list)
    duplicates_removed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    driver_peak_rss_mb: float = 0.0
    ray_started_early: bool = False  # an embedded Ray started while the grid expanded

    @property
    def failed_point_ids(self) -> list[str]:
        return [pid for f in self.failed for pid in f["point_ids"]]

    @property
    def ok(self) -> bool:
        """True when every point of the grid is now in the store."""
        return not self.failed and self.done == self.new

    def summary(self) -> dict:
        return {**asdict(self), "ok": self.ok, "failed_points": len(self.failed_point_ids)}


# --------------------------------------------------------------------------- running
def _stdout(line: str) -> None:
    print(line, flush=True)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def new_points(grid: Grid, store: Path) -> tuple[pa.Table, list[Path]]:
    """Grid rows whose ``point_id`` no committed part holds, and the unreadable parts."""
    existing, unreadable = results_store.existing_ids(store)
    if len(existing) == 0:
        return grid.points, unreadable
    known = pc.is_in(grid.points.column("point_id"), value_set=existing)
    return grid.points.filter(pc.invert(known)), unreadable


def execute(
    grid: Grid,
    cfg: DictConfig,
    *,
    task_hook=None,
    sweep_dir: Path | None = None,
    out: Out = _stdout,
    err: Out = _stderr,
    early=None,
) -> SweepResult:
    """Compute the grid's points that are not in the store yet, on Ray, and commit them.

    ``cfg`` supplies the execution settings (``store``, ``ray``, ``sweep``).
    ``task_hook`` is a test-only fault injector run in each task
    (:data:`pipeline.sweep.dispatch.TaskHook`). ``early``: an embedded Ray already
    starting (:class:`~pipeline.execution.raysession.EarlyStart`), used if there is
    anything to compute; the caller cancels it otherwise. Raises :class:`ConfigError`
    before computing anything if the store (when there are points to
    compute) or ``sweep_dir`` (where ``summary.json`` will go) cannot be
    written.
    """
    start = time.perf_counter()
    store = Path(cfg.store.path)
    todo, unreadable = new_points(grid, store)
    result = SweepResult(
        run_id=results_store.new_run_id(),
        store=str(store),
        points=len(grid),
        profiles=len(grid.profiles),
        new=todo.num_rows,
        already_in_store=len(grid) - todo.num_rows,
        unreadable_parts=[p.name for p in unreadable],
    )
    out(
        f"asi-sweep: {result.points} points ({result.profiles} profiles): "
        f"{result.new} new, {result.already_in_store} already in store {store}"
    )
    _warn_unreadable(store, unreadable, err)
    store_refusal = _unwritable(store)
    if result.new and store_refusal:
        raise ConfigError(
            f"store.path: cannot write to the store {store} ({store_refusal}); nothing was "
            f"computed: make it writable or choose another store.path"
        )
    if sweep_dir is not None and (refusal := _unwritable(sweep_dir)):
        raise ConfigError(
            f"hydra.sweep.dir: cannot write to {sweep_dir} ({refusal}); nothing was computed: "
            "make it writable or choose another hydra.sweep.dir"
        )
    try:
        if result.new:
            _compute(grid, todo, cfg, result, task_hook, out, err, early)
        compact_start = time.perf_counter()
        try:
            # A read-only store with nothing new (an archive) is left as it is: readers
            # deduplicate.
            if not store_refusal:
                result.duplicates_removed = results_store.compact(store)
        except OSError as exc:  # the points are stored; readers deduplicate what is left
            err(f"warning: could not compact the store {store}: {exc}")
    except KeyboardInterrupt as exc:  # Ray is stopped by now: say what stays
        raise SweepInterrupted(len(result.parts), result.done, str(store)) from exc
    result.timings["compact_s"] = time.perf_counter() - compact_start
    if result.duplicates_removed:
        out(f"asi-sweep: compacted the store: {result.duplicates_removed} duplicate rows removed")
    result.timings["wall_s"] = time.perf_counter() - start
    result.driver_peak_rss_mb = peak_rss_bytes() / (1 << 20)
    return result


def _unwritable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (made if missing), or None if they can."""
    try:
        results_store.check_writable(directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _warn_unreadable(store: Path, unreadable: Sequence[Path], err: Out) -> None:
    """One warning line per outcome for the parts that failed their check: moved aside, or
    left in place because the store would not let them move (a read-only store)."""
    stuck = [p.name for p in unreadable if p.exists()]
    moved = [p.name for p in unreadable if p.name not in stuck]
    quarantine = store / results_store.QUARANTINE
    if moved:
        err(
            f"warning: {len(moved)} part files in {store} failed their check and were "
            f"moved to {quarantine} (their points are computed again): {', '.join(moved[:3])}"
        )
    if stuck:
        err(
            f"warning: {len(stuck)} part files in {store} failed their check and could not be "
            f"moved to {quarantine}; they were skipped, their points count as missing: "
            f"{', '.join(stuck[:3])}"
        )


def _compute(
    grid: Grid,
    todo: pa.Table,
    cfg: DictConfig,
    result: SweepResult,
    hook,
    out: Out,
    err: Out,
    early=None,
) -> None:
    """Run ``todo`` on Ray and commit its rows; fill ``result`` in place."""
    from asi_slowdown.pipeline.execution import (
        raysession,  # Ray takes a second to import: only here
    )
    from asi_slowdown.pipeline.sweep import dispatch

    with raysession.session(cfg.ray, early) as ray_info:
        result.ray_started_early = early is not None
        result.timings["ray_start_s"] = ray_info.start_seconds  # on the sweep's critical path
        if early is not None:
            result.timings["ray_start_beside_grid_s"] = ray_info.beside_seconds
        first = todo.filter(pc.equal(todo.column("profile"), todo.column("profile")[0]))
        probe_start = time.perf_counter()
        speed = cfg.sweep.points_per_second or measure_points_per_second(
            first, grid.profiles[first.column("profile")[0].as_py()]
        )
        result.timings["probe_s"] = time.perf_counter() - probe_start
        result.chunk_size = cfg.sweep.chunk_size or chunk_size(
            result.new,
            ray_info.cpus,
            speed,
            cfg.sweep.target_task_seconds,
            cfg.sweep.max_chunk_points,
        )
        payloads = dispatch.put_payloads(
            grid.profiles, np.unique(todo.column("profile").to_numpy())
        )
        if ray_info.started_here:
            warm_start = time.perf_counter()
            first = next(iter_batches(iter_chunks(todo.slice(0, 1), 1), 1))
            dispatch.warm_up(first, payloads, ray_info.cpus)
            result.timings["ray_start_s"] += time.perf_counter() - warm_start
        writer = results_store.PartWriter(
            Path(cfg.store.path), result.run_id, cfg.store.part_rows, cfg.store.flush_seconds
        )
        progress = progress_bar(result.new, bool(cfg.sweep.progress))
        dispatch_start = time.perf_counter()
        try:
            stats = dispatch.dispatch(
                iter_batches(iter_chunks(todo, result.chunk_size), result.chunk_size),
                payloads,
                on_rows=writer.add,
                max_in_flight=cfg.sweep.max_in_flight or 2 * ray_info.cpus,
                max_retries=cfg.sweep.max_retries,
                progress=progress,
                hook=hook,
            )
            writer.flush()
        except BaseException:
            # Aborted (Ctrl-C, a failed write): commit what arrived, so a rerun skips it.
            with contextlib.suppress(Exception):  # the original error matters more
                writer.flush()
            raise
        finally:
            if progress is not None:
                progress.close()
            result.parts = [p.name for p in writer.parts]
            result.done = writer.rows_written
        result.timings["dispatch_s"] = time.perf_counter() - dispatch_start
        stop_start = time.perf_counter()
    result.timings["ray_stop_s"] = time.perf_counter() - stop_start  # 0 unless started here
    result.timings["model_s"] = stats.model_seconds
    result.chunks = stats.chunks
    result.nodes = stats.nodes
    result.workers = len(stats.workers)
    result.failed = stats.failures
    out(
        f"asi-sweep: stored {result.done} points ({result.chunks} chunks of <= {result.chunk_size}, "
        f"{len(result.nodes)} node(s)) in {len(result.parts)} part file(s) under {cfg.store.path}"
    )
    for failure in result.failed:
        ids = failure["point_ids"]
        shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (
            f", ... ({len(ids) - MAX_IDS_SHOWN} more in summary.json)"
            if len(ids) > MAX_IDS_SHOWN
            else ""
        )
        err(f"error: a chunk of {len(ids)} points failed ({failure['error']}); point ids: {shown}")
    if result.failed:
        err(
            f"error: {len(result.failed_point_ids)} of {result.new} points failed; "
            "the others are stored, rerun the same command to retry the failed ones"
        )


def write_sweep_dir(sweep_dir: Path, result: SweepResult, config: DictConfig | None) -> None:
    """``multirun.yaml`` (the composed sweep config) and ``summary.json``: nothing per point."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        OmegaConf.save(config, sweep_dir / "multirun.yaml")
    tmp = sweep_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n")
    tmp.replace(sweep_dir / "summary.json")


def run(
    overrides: Sequence[str],
    composer: Composer,
    cfg: DictConfig,
    *,
    config_name: str = "config",
    sweep_dir: Path | None = None,
    task_hook=None,
    out: Out = _stdout,
    err: Out = _stderr,
) -> SweepResult:
    """Validate, expand and execute a sweep; the common path of the sweeper and :func:`sweep`.

    ``overrides`` are the sweeper params followed by the command line's;
    ``cfg`` is the composed base config (execution settings).
    """
    start = time.perf_counter()
    check_execution(cfg)
    bars = []
    early = []

    def plan(dims, steps: int):  # said at once: composing a large grid takes a while
        out(f"asi-sweep: expanding the grid: {dimensions_text(dims)}")
        if starts_early(cfg):  # every value is checked by now: Ray starts as the grid expands
            from asi_slowdown.pipeline.execution.raysession import EarlyStart

            early.append(EarlyStart(cfg.ray))
        bars.append(
            progress_bar(
                steps,
                bool(cfg.sweep.progress),
                desc="asi-sweep: grid",
                unit="steps",
                rate_unit="step",
                percent=GRID_LINE_PERCENT,
                seconds=GRID_LINE_SECONDS,
            )
        )
        return bars[-1]

    try:
        try:
            grid = build_grid(overrides, composer, config_name, base=cfg, planner=plan)
        finally:
            for bar in bars:
                if bar is not None:
                    bar.close()
        grid_seconds = time.perf_counter() - start
        result = execute(
            grid,
            cfg,
            task_hook=task_hook,
            sweep_dir=sweep_dir,
            out=out,
            err=err,
            early=early[0] if early else None,
        )
    finally:
        for unused in early:  # bad input, an interrupt, nothing new: stop it (else a no-op)
            unused.cancel()
    result.timings["grid_s"] = grid_seconds
    if sweep_dir is not None:
        write_sweep_dir(sweep_dir, result, cfg)
        out(f"asi-sweep: summary in {sweep_dir / 'summary.json'}")
    return result


def starts_early(cfg: DictConfig) -> bool:
    """Whether Ray starts while the grid expands (:class:`~pipeline.execution.raysession.EarlyStart`):
    an embedded Ray, none running in this process, and a store without committed parts, so
    that every point of the grid will be computed. A store with parts may hold the whole
    grid already, and a sweep with nothing to do starts no Ray: it waits for the grid."""
    if cfg.ray.address is not None:
        return False
    ray = sys.modules.get("ray")  # not imported: certainly not running
    if ray is not None and ray.is_initialized():
        return False
    return not results_store.part_files(Path(cfg.store.path))


def grid_overrides(cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """What the grid expands: the sweep's ``hydra.sweeper.params``, then the command line's
    ``overrides``; refused if ``cfg`` (the sweep's config) asks for a Hydra launcher."""
    check_launcher(cfg)
    return [*sweeper_params(cfg.hydra.sweeper.get("params")), *overrides]


def sweep(
    overrides: Sequence[str] = (),
    *,
    config_name: str = "config",
    composer: Composer | None = None,
    sweep_dir: Path | None = None,
    task_hook=None,
    out: Out = _stdout,
    err: Out = _stderr,
) -> SweepResult:
    """Run a sweep: what ``asi-sweep <overrides>`` does (also from tests and notebooks).

    Raises :class:`ConfigError` on bad input. Reuses a Ray already initialised
    in this process.
    """
    composer = composer or default_composer()
    check_params_override(overrides)
    cfg = composer.load(overrides, config_name, multirun=True)
    return run(
        grid_overrides(cfg, overrides),
        composer,
        cfg,
        config_name=config_name,
        sweep_dir=sweep_dir,
        task_hook=task_hook,
        out=out,
        err=err,
    )


def sweep_dir_of(cfg: DictConfig) -> Path:
    """``hydra.sweep.dir`` resolved (``${now:...}``); where ``summary.json`` goes."""
    try:
        return Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
    except Exception as exc:  # an interpolation that cannot resolve outside a Hydra run
        raise ConfigError(f"hydra.sweep.dir: {one_line(exc)}") from None


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C while points were computed, with what had been committed to the store by then."""

    def __init__(self, parts: int, points: int, store: str) -> None:
        super().__init__(parts, points, store)
        self.parts, self.points, self.store = parts, points, store


def interrupted_line(exc: BaseException) -> str:
    """The last line of an interrupted sweep: how much of it stays in the store."""
    if not isinstance(exc, SweepInterrupted):  # while the grid was expanded: before any work
        return "asi-sweep: interrupted before any point was computed; rerun to start"
    if not exc.parts:
        return "asi-sweep: interrupted before any part was committed; rerun to start again"
    return (
        f"asi-sweep: interrupted; {exc.points:,} points in {exc.parts} part file(s) committed "
        f"to {exc.store} stay, rerun to resume"
    )


@contextlib.contextmanager
def interrupted_once() -> Iterator[None]:
    """The first SIGINT (Ctrl-C, ``kill -INT``) stops the sweep; later ones are ignored.

    The first raises ``KeyboardInterrupt`` as usual and sets SIGINT to be
    ignored, so the orderly stop it starts (cancel the tasks in flight, wait
    for them, commit what arrived, shut Ray down) cannot be cut short by a
    second one; it stays ignored until the process exits. Without an
    interrupt the previous handler is restored. A SIGINT already ignored
    when the sweep starts (``nohup``, a script's background job) stays so.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def first(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first)
    try:
        yield
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main_sweep(overrides: Sequence[str], composer: Composer, config_name: str) -> int:
    """``asi-sweep``'s work: the sweep and its exit code (0, or 1 when points failed); the
    command maps the rest (:func:`pipeline.configuration.errors.exit_codes`)."""
    with interrupted_once():  # the sweep's config composed once, for its folder too
        check_params_override(overrides)
        cfg = composer.load(overrides, config_name, multirun=True)
        result = run(
            grid_overrides(cfg, overrides),
            composer,
            cfg,
            config_name=config_name,
            sweep_dir=sweep_dir_of(cfg),
        )
    return 0 if result.ok else EXIT_FAILED_POINTS


__all__ = [
    "EXIT_FAILED_POINTS",
    "SweepInterrupted",
    "SweepResult",
    "main_sweep",
    "sweep",
]
