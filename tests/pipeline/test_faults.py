"""Fault injection: killed drivers and workers, corrupt parts, concurrent sweeps, a full disk.

Every scenario ends the same way: the store holds exactly the grid's points,
each once for every reader, with metrics identical to an uninterrupted run
(:func:`reference`, built once per module). Randomness (kill moments, which
chunk or part to hit) is seeded, so a failure replays.

Drivers run as real ``asi-sweep`` processes (:mod:`tests.pipeline.fault_driver`
slows their commits so kills can land between parts); each starts its own
Ray, in a new session whose processes carry a marker in their environment,
so that every one of them is killed afterwards whatever state the kill left.
Reruns run in-process on the module's Ray: the same resume code, without
paying a Ray start per rerun.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
from omegaconf import OmegaConf

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.report import aggregate
from asi_slowdown.pipeline.store.parts import QUARANTINE
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS, PARAM_COLUMNS
from asi_slowdown.pipeline.sweep.run import (
    SweepInterrupted,
    interrupted_line,
    starts_early,
    sweep,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SEED = 6  # the number: every random choice below derives from it

GRID = [
    "cpus=1,2,4,8,16",
    "ephmap.slots=1,2",
    "workload.file_size=64M,1G",
    "mitigations=glob(*)",
    "workload=fio_randread_tmpfs,kernel_compile",
    "samples=256",
]
STAGES = len(list((REPO / "conf" / "mitigations").glob("*.yaml")))
GRID_POINTS = 5 * 2 * 2 * STAGES * 2
CHUNK = 10
PARTS = -(-GRID_POINTS // CHUNK)  # one part per chunk (store.part_rows=1)
EXECUTION = [f"sweep.chunk_size={CHUNK}", "store.part_rows=1", "sweep.progress=false"]
COMMIT_DELAY = 0.05
"""Seconds each killed driver waits inside a commit: ~1.5 s of commits to kill into."""

DRIVER_TIMEOUT = 180.0
MARK = "ASI_FAULT_TEST_MARK"
"""Environment variable set on every driver; its Ray processes inherit it."""


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def local_ray():
    """An embedded Ray for the in-process sweeps (reused if the session has one)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 << 20,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def run_sweep(path: Path, *overrides: str, **kwargs):
    """An in-process sweep of ``overrides`` into the store ``path``, quietly."""
    lines: list[str] = []
    result = sweep(
        [*overrides, f"store.path={path}", *EXECUTION], out=lines.append, err=lines.append, **kwargs
    )
    return result, lines


@pytest.fixture(scope="module")
def reference(local_ray, tmp_path_factory):
    """The uninterrupted sweep's store: (path, table by point id)."""
    path = tmp_path_factory.mktemp("reference") / "store"
    result, _ = run_sweep(path, *GRID)
    assert result.ok and result.done == GRID_POINTS
    assert len(store.part_files(path)) == PARTS
    return path, stored(path)


def stored(path: Path):
    """The store as every reader sees it (deduplicated), as pandas indexed by point id."""
    return store.read(path).to_pandas().set_index("point_id").sort_index()


def raw_rows(path: Path) -> int:
    """Rows in the committed part files, duplicates included."""
    files = [str(p) for p in store.part_files(path)]
    return ds.dataset(files, format="parquet").count_rows() if files else 0


def assert_same_as(reference_table, path: Path) -> None:
    """The store at ``path`` holds exactly the reference's points with identical metrics."""
    table = stored(path)
    assert list(table.index) == list(reference_table.index)
    for column in (*PARAM_COLUMNS, *METRIC_COLUMNS):
        np.testing.assert_array_equal(
            table[column].to_numpy(), reference_table[column].to_numpy(), err_msg=column
        )


def temporaries(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob(".part-*.tmp")) if path.is_dir() else []


# --------------------------------------------------------------------------- driver processes
def marked_pids(mark: str) -> list[int]:
    """Processes whose environment carries ``MARK=mark`` (a driver and everything it started)."""
    needle = f"{MARK}={mark}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


class Driver:
    """An ``asi-sweep`` process (commits slowed by ``delay``), its output, and its teardown."""

    def __init__(self, args: list[str], cwd: Path, delay: float = COMMIT_DELAY) -> None:
        self.mark = uuid.uuid4().hex
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.stderr_path = cwd / f"driver-{self.mark[:8]}.err"
        env = {**os.environ, MARK: self.mark, "PYTHONPATH": str(REPO)}
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.pipeline.fault_driver", str(delay), *args],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,  # its own process group: killed as one
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def printed(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Poll ``condition`` every 5 ms; fail if the driver ends or times out first."""
        deadline = time.monotonic() + DRIVER_TIMEOUT
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"driver ended before {what}: {self.proc.returncode}\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"driver never reached {what}")
            time.sleep(0.005)

    def kill(self) -> None:
        """SIGKILL the driver alone (what a crash or the OOM killer does), and reap it."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def finish(self) -> int:
        """Wait for a driver that should run to its end; its exit code."""
        try:
            return self.proc.wait(timeout=DRIVER_TIMEOUT)
        finally:
            self._reader.join(timeout=10)

    def cleanup(self) -> None:
        """Kill whatever the driver left (its Ray's agents outlive a killed driver)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for _ in range(100):
            pids = marked_pids(self.mark)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)


# --------------------------------------------------------------------------- killed driver
@dataclass(frozen=True)
class KillPoint:
    """When to kill: ``kind`` and its parameter (seconds, or a count of parts)."""

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


def kill_points(rng: random.Random) -> list[KillPoint]:
    """Seven moments spread over a sweep's life, drawn from ``rng``.

    While composing (a delay after start), during Ray start-up (a delay after
    the plan is printed), after k committed parts (three values of k), in the
    middle of the j-th commit (its temporary file written, not renamed) and
    while Ray shuts down (a delay after the last commit).
    """
    ks = sorted(rng.sample(range(1, PARTS - 1), 3))
    return [
        KillPoint("seconds_after_start", round(rng.uniform(0.2, 1.0), 2)),
        KillPoint("seconds_into_ray_start", round(rng.uniform(0.0, 1.5), 2)),
        *(KillPoint("parts_committed", k) for k in ks),
        KillPoint("mid_commit", rng.randint(1, PARTS - 1)),
        KillPoint("seconds_after_last_commit", round(rng.uniform(0.0, 0.5), 2)),
    ]


def kill_at(driver: Driver, point: KillPoint, path: Path) -> None:
    """Wait for ``point`` in ``driver``'s life, then SIGKILL it."""
    if point.kind == "seconds_after_start":
        time.sleep(max(0.0, driver.started + point.value - time.monotonic()))
    elif point.kind == "seconds_into_ray_start":
        driver.wait_for(lambda: driver.printed(" new, "), "its plan")
        time.sleep(point.value)
    elif point.kind == "parts_committed":
        driver.wait_for(lambda: len(store.part_files(path)) >= point.value, str(point))
    elif point.kind == "mid_commit":
        seen: set[str] = set()

        def in_commit() -> bool:
            names = temporaries(path)
            seen.update(names)
            return len(seen) >= point.value and bool(names)

        driver.wait_for(in_commit, str(point))
    elif point.kind == "seconds_after_last_commit":
        driver.wait_for(lambda: len(store.part_files(path)) == PARTS, "its last commit")
        time.sleep(point.value)
    driver.kill()


def test_killed_driver_loses_nothing_at_seven_random_moments(local_ray, reference, tmp_path):
    ref_path, ref_table = reference
    points = kill_points(random.Random(SEED))
    assert len(points) >= 5
    seen = []
    for index, point in enumerate(points):
        path = tmp_path / f"store{index}"
        driver = Driver([*GRID, *EXECUTION, f"store.path={path}"], tmp_path)
        try:
            kill_at(driver, point, path)
        finally:
            driver.cleanup()
        parts, litter = len(store.part_files(path)), temporaries(path)
        seen.append((str(point), parts, len(litter)))
        if point.kind == "mid_commit":
            assert litter, f"{point}: the kill missed the commit"
        if point.kind in ("seconds_after_start", "seconds_into_ray_start"):
            assert parts == 0, f"{point}: killed later than meant ({parts} parts)"
        if point.kind == "seconds_after_last_commit":
            assert parts == PARTS
        # Every committed part is whole: it verifies, and its rows are not recomputed.
        assert store.check_parts(path)[1] == [], point
        committed = raw_rows(path)
        result, _ = run_sweep(path, *GRID)
        assert result.ok, (point, result.failed)
        assert result.new == GRID_POINTS - committed, point
        assert raw_rows(path) == GRID_POINTS, f"{point}: duplicated points"
        assert temporaries(path) == [], f"{point}: the dead driver's temporary file stayed"
        assert not (path / QUARANTINE).exists(), point
        assert_same_as(ref_table, path)
    # Kills landed at different points of the run: none, some and all parts committed.
    committed_counts = [parts for _, parts, _ in seen]
    assert min(committed_counts) == 0 and max(committed_counts) == PARTS, seen
    assert len(set(committed_counts)) >= 4, seen


# --------------------------------------------------------------------------- interrupted driver
INTERRUPTS = 4
"""Interrupted drivers: before the orderly stop, about one run in four crashed."""

CRASH_SIGNS = ("Traceback", "Check failed", "Segmentation fault", "Fatal Python error", "SIGSEGV")


def test_interrupted_driver_exits_130_keeps_its_parts_and_leaves_no_ray_process(
    local_ray, reference, tmp_path
):
    """SIGINT mid-run, alternately to the driver alone (``kill -INT``) and to its whole
    process group (a terminal's Ctrl-C, which Ray's processes receive too)."""
    _, ref_table = reference
    rng = random.Random(SEED)
    progress_on = [arg for arg in EXECUTION if arg != "sweep.progress=false"]
    for index in range(INTERRUPTS):
        path = tmp_path / f"store{index}"
        driver = Driver([*GRID, *progress_on, f"store.path={path}"], tmp_path)
        try:
            driver.wait_for(lambda p=path: len(store.part_files(p)) >= 1, "its first part")
            time.sleep(rng.uniform(0.0, 0.3))
            if index % 2:
                os.killpg(driver.proc.pid, signal.SIGINT)
            else:
                driver.proc.send_signal(signal.SIGINT)
            code = driver.finish()
            left = marked_pids(driver.mark)  # the moment it exited
        finally:
            driver.cleanup()
        stderr = driver.stderr
        assert code == 130, (index, stderr)
        committed = store.part_files(path)
        said = interrupted_line(SweepInterrupted(len(committed), raw_rows(path), str(path)))
        assert stderr.splitlines()[-1] == said, (index, stderr)  # how much stays
        assert not [sign for sign in CRASH_SIGNS if sign in stderr], (index, stderr)
        assert "\r" not in stderr  # its progress went to a file: plain lines
        assert left == [], f"{index}: Ray processes outlived the driver: {left}"
        assert 0 < len(committed) < PARTS, index
        assert store.check_parts(path) == (committed, []), index
        assert temporaries(path) == [], index
    # A rerun computes exactly what the interrupted one had not committed.
    rows = raw_rows(path)
    result, _ = run_sweep(path, *GRID)
    assert result.ok and result.new == GRID_POINTS - rows
    assert raw_rows(path) == GRID_POINTS
    assert_same_as(ref_table, path)


# --------------------------------------------------------------------------- Ray started early
WIDE_GRID = ["workload=fio_randread_tmpfs,kernel_compile,fork_exec", "cpu=glob(*)", *GRID[:4]]
"""A grid of 3 x 3 x 9 compositions: seconds of expansion, while Ray starts beside it."""


def run_to_end(args: list[str], cwd: Path) -> tuple[int, list[int], Driver]:
    """A driver run to its end: its exit code, the processes of its still alive when it
    exited (Ray's, if it left any), and the driver (its stderr)."""
    driver = Driver(args, cwd, delay=0.0)
    try:
        code = driver.finish()
        left = marked_pids(driver.mark)
    finally:
        driver.cleanup()
    return code, left, driver


def test_a_sweep_into_an_empty_store_starts_ray_while_its_grid_expands(tmp_path, monkeypatch):
    """The embedded Ray's start overlaps the grid's expansion (summary.json says so), and
    every process it started ends with the sweep."""
    path = f"store.path={tmp_path / 's'}"
    code, left, driver = run_to_end(
        [*GRID, *EXECUTION, path, f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path
    )
    assert code == 0, driver.stderr
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["ok"] and summary["ray_started_early"]
    assert left == [], f"Ray processes outlived the driver: {left}"
    # a store with parts may hold the whole grid: Ray waits for the grid to say what is new
    # (this process's own Ray, which other tests may have started, is stood in for)
    ray = types.SimpleNamespace(running=False)
    ray.is_initialized = lambda: ray.running
    monkeypatch.setitem(sys.modules, "ray", ray)
    cfg = OmegaConf.create({"ray": {"address": None}, "store": {"path": str(tmp_path / "s")}})
    assert store.part_files(tmp_path / "s") and not starts_early(cfg)
    cfg.store.path = str(tmp_path / "empty")
    assert starts_early(cfg)
    ray.running = True  # a Ray this process runs already is reused
    assert not starts_early(cfg)
    ray.running = False
    cfg.ray.address = "auto"  # a cluster is reached, never started
    assert not starts_early(cfg)


@pytest.mark.parametrize("group", [False, True])
def test_interrupted_while_the_grid_expands_stops_the_ray_starting_beside_it(tmp_path, group):
    """SIGINT while the grid expands and Ray starts in its thread, to the driver alone and to
    its process group: exit 130, the interrupted line, nothing stored, no Ray process left."""
    path = tmp_path / "store"
    driver = Driver([*WIDE_GRID, *EXECUTION, f"store.path={path}"], tmp_path, delay=0.0)
    try:
        driver.wait_for(lambda: driver.printed("expanding the grid"), "the grid's expansion")
        time.sleep(1.0)  # Ray's start is under way (it takes seconds)
        if group:
            os.killpg(driver.proc.pid, signal.SIGINT)
        else:
            driver.proc.send_signal(signal.SIGINT)
        code = driver.finish()
        left = marked_pids(driver.mark)
    finally:
        driver.cleanup()
    assert code == 130, driver.stderr
    assert driver.stderr.splitlines()[-1] == interrupted_line(KeyboardInterrupt())
    assert not [sign for sign in CRASH_SIGNS if sign in driver.stderr], driver.stderr
    assert left == [], f"Ray processes outlived the driver: {left}"
    assert store.part_files(path) == []


def test_bad_input_found_after_ray_started_is_one_line_and_stops_it(tmp_path, monkeypatch):
    """A configuration of the user's that fails its checks only when its turn comes to be
    composed (after the first combination, once Ray has started): exit 2, one line naming
    the field, no store, no Ray process left."""
    conf = tmp_path / "conf" / "workload"
    conf.mkdir(parents=True)
    preset = (REPO / "conf" / "workload" / "fio_randread_tmpfs.yaml").read_text()
    (conf / "zz_bad_io.yaml").write_text(
        preset.replace("name: fio_randread_tmpfs", "name: zz_bad_io").replace(
            "io_size: 4K", "io_size: -1"
        )
    )
    monkeypatch.setenv("ASI_CONFIG_DIR", str(tmp_path / "conf"))
    path = tmp_path / "store"
    code, left, driver = run_to_end(
        ["workload=fio_randread_tmpfs,zz_bad_io", *GRID[:4], *EXECUTION, f"store.path={path}"],
        tmp_path,
    )
    lines = driver.stderr.strip().splitlines()
    assert code == 2, driver.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "io_size" in lines[0], lines
    assert left == [], f"Ray processes outlived the driver: {left}"
    assert not path.exists()


# --------------------------------------------------------------------------- killed worker
def stall_first_attempt(victim: str, flags: Path) -> Callable[[list[str]], None]:
    """A task hook: the chunk holding ``victim``, on its first attempt, reports its worker's
    pid in ``flags/pid`` and waits to be killed; every attempt is logged in ``flags/attempts``."""

    def hook(point_ids: list[str]) -> None:
        if victim not in point_ids:
            return
        with open(flags / "attempts", "a") as log:
            log.write(f"{os.getpid()}\n")
        try:  # O_EXCL: only the first attempt stalls
            os.close(os.open(flags / "stalled", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        (flags / "pid.tmp").write_text(str(os.getpid()))
        os.replace(flags / "pid.tmp", flags / "pid")
        time.sleep(DRIVER_TIMEOUT)  # killed long before

    return hook


def kill_when_stalled(flags: Path, killed: list[int], stop: threading.Event) -> None:
    """Wait for the stalled worker's pid, check it is a Ray worker, SIGKILL it."""
    while not (flags / "pid").exists():
        if stop.wait(0.01):
            return
    pid = int((flags / "pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"ray" in cmdline, cmdline  # a Ray worker, not the test's own process
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)


def test_killed_worker_chunk_is_retried_and_the_store_is_the_same(local_ray, reference, tmp_path):
    _, ref_table = reference
    victim = random.Random(SEED).choice(list(ref_table.index))
    flags = tmp_path / "flags"
    flags.mkdir()
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_when_stalled, args=(flags, killed, stop), daemon=True)
    killer.start()
    try:
        result, _ = run_sweep(
            tmp_path / "store", *GRID, task_hook=stall_first_attempt(victim, flags)
        )
    finally:
        stop.set()  # release the killer if the hook never ran
        killer.join(timeout=30)
    assert killed, "no worker was killed"
    attempts = (flags / "attempts").read_text().split()
    assert len(attempts) == 2 and attempts[0] == str(killed[0]) != attempts[1], attempts
    assert result.ok and not result.failed and result.done == GRID_POINTS
    assert raw_rows(tmp_path / "store") == GRID_POINTS
    assert_same_as(ref_table, tmp_path / "store")


# --------------------------------------------------------------------------- corrupt parts
def truncate(part: Path, rng: random.Random) -> None:
    """Cut the file short (a full disk under an older writer, a torn copy)."""
    data = part.read_bytes()
    part.write_bytes(data[: rng.randrange(1, len(data))])


def flip_byte(part: Path, rng: random.Random, region: slice) -> None:
    """Invert one byte at a random offset within ``region`` (bit rot, a bad copy)."""
    data = bytearray(part.read_bytes())
    offset = rng.randrange(*region.indices(len(data))[:2])
    data[offset] ^= 0xFF
    part.write_bytes(bytes(data))


def test_corrupt_parts_are_quarantined_never_aggregated_and_recomputed(
    local_ray, reference, tmp_path
):
    ref_path, ref_table = reference
    path = tmp_path / "store"
    shutil.copytree(ref_path, path)
    rng = random.Random(SEED)
    victims = rng.sample(store.part_files(path), 3)
    truncate(victims[0], rng)
    flip_byte(victims[1], rng, slice(4, -4096))  # inside the column data
    flip_byte(victims[2], rng, slice(-2048, -8))  # inside the footer (schema, statistics)
    damaged = {p.name: p.read_bytes() for p in victims}
    lost = CHUNK * len(victims)

    # Aggregation finds them before planning, moves them aside and counts what is left.
    result = aggregate.aggregate(path)
    assert sorted(result.scan.unreadable) == sorted(damaged)
    assert int(result.stage_summary["points"].sum()) == GRID_POINTS - lost
    quarantined = {p.name: p.read_bytes() for p in (path / QUARANTINE).iterdir()}
    assert quarantined == damaged  # moved, byte for byte, not deleted
    assert len(store.part_files(path)) == PARTS - len(victims)

    # One more goes bad after the aggregation: the sweep's own read catches it.
    late = rng.choice(store.part_files(path))
    flip_byte(late, rng, slice(4, -4096))
    # The next sweep computes exactly their points again.
    rerun, lines = run_sweep(path, *GRID)
    assert rerun.unreadable_parts == [late.name]
    assert any(line.startswith("warning: 1 part files") and QUARANTINE in line for line in lines)
    assert rerun.ok and rerun.new == lost + CHUNK
    assert_same_as(ref_table, path)
    assert len(list((path / QUARANTINE).iterdir())) == len(victims) + 1
    assert aggregate.aggregate_pandas(path).scan.unreadable == []


# --------------------------------------------------------------------------- concurrent sweeps
def test_two_concurrent_sweeps_into_one_store_lose_and_double_nothing(
    local_ray, reference, tmp_path
):
    _, ref_table = reference
    path = tmp_path / "store"
    first = [g if not g.startswith("cpus=") else "cpus=1,2,4,8" for g in GRID]
    second = [g if not g.startswith("cpus=") else "cpus=4,8,16" for g in GRID]
    drivers = [
        Driver([*grid, *EXECUTION, f"store.path={path}"], tmp_path) for grid in (first, second)
    ]
    try:
        codes = [d.finish() for d in drivers]
    finally:
        for d in drivers:
            d.cleanup()
    assert codes == [0, 0], [d.stderr for d in drivers]
    # Both planned on an empty store, so the overlap (cpus 4 and 8) was computed twice ...
    overlap = 2 * GRID_POINTS // 5
    removed = [
        int(line.split("store: ")[1].split()[0])
        for d in drivers
        for line in d.lines
        if "compacted the store" in line
    ]
    assert sum(removed) == overlap, "the two sweeps did not overlap in time"
    # ... and the compaction at the end of each left it once on disk, and once in every read.
    assert raw_rows(path) == GRID_POINTS
    assert_same_as(ref_table, path)
    result = aggregate.aggregate_pandas(path)
    assert int(result.stage_summary["points"].sum()) == GRID_POINTS
    again, _ = run_sweep(path, *GRID)
    assert again.ok and again.new == 0


# --------------------------------------------------------------------------- full disk
@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (about nine parts of this grid); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_is_one_clear_error_no_torn_part_and_a_rerun_completes(
    local_ray, reference, tiny_disk, tmp_path
):
    _, ref_table = reference
    path = tiny_disk / "store"
    driver = Driver([*GRID, *EXECUTION, f"store.path={path}"], tmp_path, delay=0.0)
    try:
        code = driver.finish()
    finally:
        driver.cleanup()
    stderr = driver.stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 1, stderr
    assert len(errors) == 1, stderr
    assert "No space left on device" in errors[0] and str(path) in errors[0], errors
    assert "Traceback" not in stderr
    # No torn files: no temporary left, every committed part whole.
    committed = store.part_files(path)
    assert 0 < len(committed) < PARTS
    assert temporaries(path) == []
    assert store.check_parts(path) == (committed, [])
    assert store.read(path).num_rows == CHUNK * len(committed)
    # With space again, a rerun computes the rest.
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    result, _ = run_sweep(path, *GRID)
    assert result.ok and result.new == GRID_POINTS - CHUNK * len(committed)
    assert_same_as(ref_table, path)
