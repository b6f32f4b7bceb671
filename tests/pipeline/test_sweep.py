"""Sweeps on Ray: determinism, retries, failures, resume, the command line, several nodes.

In-process sweeps share one embedded Ray (2 CPUs) for the session; command-line
tests start their own ``asi-sweep`` process (and Ray) as a user would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.store.schema import METRIC_COLUMNS, PARAM_COLUMNS
from asi_slowdown.pipeline.sweep.run import interrupted_line, sweep

pytestmark = pytest.mark.slow

ASI_SWEEP = str(Path(sys.executable).parent / "asi-sweep")
REPO = Path(__file__).resolve().parents[2]

GRID = [
    "cpus=1,2,3,5,8",
    "ephmap.slots=1,2",
    "workload.file_size=64M,1G",
    "mitigations=rfc_v2,multi_slot,metadata_mapped",
    "samples=32",
]
GRID_POINTS = 5 * 2 * 2 * 3


@pytest.fixture(scope="session")
def local_ray():
    """One embedded Ray for every in-process sweep of the session (~3 s to start)."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 << 20,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    yield ray
    ray.shutdown()


def run(tmp_path: Path, name: str, *overrides: str, **kwargs):
    """An in-process sweep into ``tmp_path/name`` (store) with quiet output."""
    lines: list[str] = []
    result = sweep(
        [*overrides, f"store.path={tmp_path / name}", "sweep.progress=false"],
        out=lines.append,
        err=lines.append,
        **kwargs,
    )
    return result, lines


def stored(path: Path):
    """The store as a pandas frame sorted by point id."""
    return store.read(path).to_pandas().set_index("point_id").sort_index()


def assert_same_results(a, b):
    assert list(a.index) == list(b.index)
    for column in (*PARAM_COLUMNS, *METRIC_COLUMNS):
        np.testing.assert_array_equal(a[column].to_numpy(), b[column].to_numpy(), err_msg=column)


def test_metrics_do_not_depend_on_chunk_size(local_ray, tmp_path):
    frames = []
    for size in (1, 7, 1000):
        result, _ = run(tmp_path, f"c{size}", *GRID, f"sweep.chunk_size={size}")
        assert result.ok and result.done == GRID_POINTS
        # A task takes up to `size` points, across the grid's 3 profiles when they fit: at
        # 1000 one task evaluates all of them, at 7 some tasks hold two profiles' points.
        assert result.chunks == {1: GRID_POINTS, 7: -(-GRID_POINTS // 7), 1000: 1}[size]
        frames.append(stored(tmp_path / f"c{size}"))
    assert len(frames[0]) == GRID_POINTS
    assert frames[0]["t_asi_mean"].gt(frames[0]["t_native_mean"]).any()
    assert_same_results(frames[0], frames[1])
    assert_same_results(frames[0], frames[2])


def test_crashed_worker_is_retried_to_completion(local_ray, tmp_path):
    marker = tmp_path / "crashed"

    def crash_once(point_ids):
        try:  # O_EXCL: exactly one task, on its first attempt, kills its worker
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os._exit(1)

    result, _ = run(tmp_path, "s", *GRID, "sweep.chunk_size=10", task_hook=crash_once)
    assert marker.exists()
    assert result.ok and not result.failed
    assert len(stored(tmp_path / "s")) == GRID_POINTS


def test_crash_without_retries_fails_that_chunk_only(local_ray, tmp_path):
    marker = tmp_path / "crashed"

    def crash_once(point_ids):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os._exit(1)

    result, _ = run(
        tmp_path, "s", *GRID, "sweep.chunk_size=10", "sweep.max_retries=0", task_hook=crash_once
    )
    assert not result.ok
    assert len(result.failed) == 1 and len(result.failed_point_ids) == 10
    assert "Worker" in result.failed[0]["error"] or "died" in result.failed[0]["error"]
    assert len(stored(tmp_path / "s")) == GRID_POINTS - 10


def test_a_raising_chunk_leaves_every_other_point_stored(local_ray, tmp_path):
    first, _ = run(tmp_path, "probe", *GRID, "sweep.chunk_size=7")
    victim = sorted(stored(tmp_path / "probe").index)[17]

    def raise_on_victim(point_ids):
        if victim in point_ids:
            raise ValueError("injected failure")

    result, lines = run(tmp_path, "s", *GRID, "sweep.chunk_size=7", task_hook=raise_on_victim)
    assert not result.ok
    assert len(result.failed) == 1
    failed = set(result.failed_point_ids)
    assert victim in failed and len(failed) <= 7
    assert result.failed[0]["error"] == "ValueError: injected failure"
    assert any(line.startswith("error: a chunk of") and victim in line for line in lines)
    kept = set(stored(tmp_path / "s").index)
    assert kept == set(stored(tmp_path / "probe").index) - failed
    # A rerun computes exactly the failed points.
    again, _ = run(tmp_path, "s", *GRID, "sweep.chunk_size=7")
    assert again.ok and again.new == len(failed)
    assert_same_results(stored(tmp_path / "s"), stored(tmp_path / "probe"))


def test_rerun_computes_nothing_and_extension_only_new_points(local_ray, tmp_path):
    base = ["cpus=1,2", "mitigations=rfc_v2,ephmap_prototype", "samples=16"]
    first, _ = run(tmp_path, "s", *base)
    assert first.new == 4 and first.done == 4
    again, lines = run(tmp_path, "s", *base)
    assert again.new == 0 and again.done == 0 and again.ok
    assert lines[0] == "asi-sweep: expanding the grid: mitigations (2) x cpus (2) = 4 points"
    assert "0 new, 4 already in store" in lines[1]
    wider, _ = run(tmp_path, "s", "cpus=1,2,4", *base[1:])
    assert wider.new == 2 and wider.already_in_store == 4
    assert len(stored(tmp_path / "s")) == 6
    assert len(store.part_files(tmp_path / "s")) == 2


def test_summary_and_multirun_yaml_in_the_sweep_dir(local_ray, tmp_path):
    result, _ = run(tmp_path, "s", "cpus=1,2", "samples=16", sweep_dir=tmp_path / "sweep")
    files = sorted(p.name for p in (tmp_path / "sweep").iterdir())
    assert files == ["multirun.yaml", "summary.json"]
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["ok"] and summary["done"] == 2 and summary["run_id"] == result.run_id
    table = store.read(tmp_path / "s")
    assert set(table["run_id"].to_pylist()) == {result.run_id}
    assert table["git_revision"][0].as_py() != ""


# --------------------------------------------------------------------------- command line
ACCEPTANCE = [
    "-m",
    "cpus=1,2,4,8",
    "workload.file_size=64M,1G",
    "ephmap.slots=1,2",
    "mitigations=glob(*)",
]
STAGES = len(list((REPO / "conf" / "mitigations").glob("*.yaml")))


def asi_sweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ASI_SWEEP, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_command_line_acceptance_fill_rerun_and_one_vs_two_workers(tmp_path):
    a = asi_sweep(*ACCEPTANCE, "ray.num_cpus=2", "sweep.progress=false", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    n = 4 * 2 * 2 * STAGES
    assert f"{n} new, 0 already in store" in a.stdout
    table = store.read(tmp_path / "outputs" / "store")
    assert table.num_rows == n
    sweeps = list((tmp_path / "outputs" / "sweeps").glob("*/*"))
    assert len(sweeps) == 1
    assert sorted(p.name for p in sweeps[0].iterdir()) == ["multirun.yaml", "summary.json"]
    summary = json.loads((sweeps[0] / "summary.json").read_text())
    assert summary["workers"] == 2

    again = asi_sweep(*ACCEPTANCE, "sweep.progress=false", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"0 new, {n} already in store" in again.stdout
    assert store.read(tmp_path / "outputs" / "store").num_rows == n

    one = asi_sweep(
        *ACCEPTANCE, "ray.num_cpus=1", "store.path=one", "sweep.progress=false", cwd=tmp_path
    )
    assert one.returncode == 0, one.stderr
    latest = max((tmp_path / "outputs" / "sweeps").glob("*/*"))
    assert json.loads((latest / "summary.json").read_text())["workers"] == 1
    assert_same_results(stored(tmp_path / "outputs" / "store"), stored(tmp_path / "one"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cpus=0,1"], "error: cpus must be an integer >= 1, got 0"),
        (["cpus=0"], "error: cpus must be an integer >= 1, got 0"),
        (["workload=nope,fio_randread_tmpfs"], "error: workload: unknown option 'nope'"),
        (["bogus=1"], "error: bogus"),
        (["workload.file_size=12Q,1G"], "error: workload.file_size must be a size like 4K"),
        (["cpus=range(2,1)"], "error: cpus: range(2,1) gives no value: the grid is empty"),
        (["sweep.chunk_size=0"], "error: sweep.chunk_size must be an integer >= 1 or null"),
    ],
)
def test_command_line_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, message):
    result = asi_sweep(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


SLOW_DRIVER = """
import json, sys, time
from asi_slowdown.pipeline.sweep.run import sweep

def slow(point_ids):  # long enough that a second node's worker starts before the sweep ends
    time.sleep(0.3)

result = sweep(sys.argv[1:], task_hook=slow, out=lambda line: None)
print(json.dumps({"ok": result.ok, "done": result.done, "nodes": result.nodes}))
"""


def test_sweep_runs_on_several_nodes(tmp_path):
    """A real two-node Ray cluster on this machine; a sweep connects to it as another driver.

    Each task sleeps 0.3 s (a test hook), so the outcome does not depend on how fast a
    node starts its workers: with Ray's default packing, a one-node answer was possible
    when the tasks finished before the second node's worker was up.
    """
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SLOW_DRIVER,
                *GRID,
                f"ray.address={cluster.address}",
                "sweep.chunk_size=4",
                f"store.path={tmp_path / 'store'}",
                "sweep.progress=false",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        cluster.shutdown()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] and summary["done"] == GRID_POINTS
    assert len(summary["nodes"]) >= 2, summary["nodes"]
    assert all(count >= 1 for count in summary["nodes"].values())


def test_another_hydra_sweeper_is_refused_in_one_line(tmp_path):
    """asi-sweep never runs one Hydra job per point: hydra/sweeper=basic is refused, not ignored."""
    basic = asi_sweep("-m", "hydra/sweeper=basic", "cpus=1,2", "store.path=basic", cwd=tmp_path)
    assert basic.returncode == 2 and not (tmp_path / "basic").exists()
    assert basic.stderr.startswith("error: hydra/sweeper=basic: asi-sweep runs its grid sweeper")
    assert len(basic.stderr.strip().splitlines()) == 1


HYDRA_APP = """
import hydra
from hydra.core.config_store import ConfigStore
from asi_slowdown.pipeline.configuration.schema import register

register()
ConfigStore.instance().store(group="hydra/launcher", name="elsewhere", node={"_target_": "x.Y"})


@hydra.main(config_path="pkg://asi_slowdown.pipeline.conf", config_name="config", version_base="1.3")
def app(cfg):
    raise AssertionError("the grid sweeper never runs Hydra jobs")


app()
"""


@pytest.mark.slow
def test_the_sweeper_plugin_runs_inside_any_hydra_app(tmp_path):
    """hydra/sweeper: grid through Hydra's own machinery (hydra.main, its config loader)."""
    common = ["samples=8", f"store.path={tmp_path / 'store'}", "ray.num_cpus=1"]
    common += ["sweep.progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    app = [sys.executable, "-c", HYDRA_APP, "-m"]
    done = subprocess.run([*app, "cpus=1,2", *common], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "sweep" / "summary.json").read_text())["done"] == 2
    refused = subprocess.run(
        [*app, "hydra/launcher=elsewhere", "cpus=4", *common],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: hydra/launcher=elsewhere: the grid sweeper runs")


# --------------------------------------------------------------------------- read-only stores
class ReadOnly:
    """A directory to fill, then make unwritable: a remounted tmpfs as root (whom file modes
    do not stop), a mode without write permission otherwise."""

    def __init__(self, root: Path, mounted: bool) -> None:
        self.path = root
        self.mounted = mounted
        self.reason = "Read-only file system" if mounted else "Permission denied"

    def _modes(self, writable: bool) -> None:
        for path in [self.path, *self.path.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode | 0o200 if writable else mode & ~0o222)

    def seal(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)
        else:
            self._modes(writable=False)

    def unseal(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,rw", str(self.path)], check=True)
        else:
            self._modes(writable=True)


@pytest.fixture
def read_only(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    if os.geteuid() != 0:
        holder = ReadOnly(root, mounted=False)
        yield holder
        holder.unseal()
        return
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:  # root ignores file modes, so only a read-only mount is real
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield ReadOnly(root, mounted=True)
    finally:
        if subprocess.run(["umount", str(root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(root)], capture_output=True)


def files_of(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_a_read_only_store_is_refused_in_one_line_before_anything_is_computed(
    local_ray, read_only, tmp_path, capsys
):
    from asi_slowdown.pipeline.cli.sweep import main

    path = read_only.path / "store"
    small = ["cpus=1,2", "mitigations=rfc_v2,ephmap_prototype", "samples=16"]
    first, _ = run(read_only.path, "store", *small, "sweep.chunk_size=2", "store.part_rows=1")
    assert first.ok and len(store.part_files(path)) == 2
    args = [*small, f"store.path={path}", "sweep.progress=false"]
    sweep_dir = tmp_path / "sweeps"

    # Everything already stored: a read-only archive is fine, nothing to write, exit 0.
    read_only.seal()
    with pytest.raises(SystemExit) as done:
        main([*args, f"hydra.sweep.dir={sweep_dir / 'a'}"])
    assert done.value.code == 0
    captured = capsys.readouterr()
    assert "0 new, 4 already in store" in captured.out and captured.err == "", captured.err

    # A corrupt part on a read-only store: it cannot move, so it is skipped, and its
    # points cannot be stored: exit 2, one error line, before Ray computes anything.
    read_only.unseal()
    victim = store.part_files(path)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    read_only.seal()
    before = files_of(path)
    with pytest.raises(SystemExit) as refused:
        main([*args, f"hydra.sweep.dir={sweep_dir / 'b'}"])
    captured = capsys.readouterr()
    assert refused.value.code == 2, captured.err
    warning, error = captured.err.splitlines()
    assert warning.startswith("warning: 1 part files") and victim.name in warning
    assert "could not be moved" in warning and "skipped" in warning and "were moved" not in warning
    assert error.startswith(f"error: store.path: cannot write to the store {path}")
    assert read_only.reason in error and "nothing was computed" in error
    assert "2 new, 2 already in store" in captured.out and "stored" not in captured.out
    assert files_of(path) == before  # nothing moved, nothing written
    assert not (sweep_dir / "b").exists()


def test_an_unwritable_sweep_dir_is_refused_in_one_line(local_ray, read_only, tmp_path):
    read_only.seal()
    with pytest.raises(ConfigError, match=r"^hydra\.sweep\.dir: cannot write to .*nothing was"):
        run(tmp_path, "store", "cpus=1", "samples=8", sweep_dir=read_only.path / "sweep")
    assert store.part_files(tmp_path / "store") == []


# --------------------------------------------------------------------------- progress in a log
def test_progress_in_a_log_is_plain_lines_without_carriage_returns(local_ray, tmp_path, capsys):
    lines: list[str] = []
    overrides = [*GRID, f"store.path={tmp_path / 's'}", "sweep.chunk_size=3"]
    result = sweep(overrides, out=lines.append, err=lines.append)  # progress on, the default
    assert result.ok
    err = capsys.readouterr().err  # pytest's capture: not a terminal, as a cron job's log
    assert "\r" not in err
    progress = [line for line in err.splitlines() if line.startswith("asi-sweep: ")]
    grid = [line for line in progress if line.startswith("asi-sweep: grid: ")]
    assert grid and grid[-1].startswith("asi-sweep: grid: 6/6 steps (100 %)"), err  # 3 + 3
    progress = [line for line in progress if line not in grid]
    assert len(progress) == 10, err  # 20 chunks of 3 points: one line per 10 %
    assert progress[-1].startswith(f"asi-sweep: {GRID_POINTS}/{GRID_POINTS} points (100 %)")


# --------------------------------------------------------------------------- interrupts
def test_an_interrupted_dispatch_lets_its_tasks_finish_and_commits_them(
    local_ray, tmp_path, monkeypatch
):
    """What an interrupted sweep's orderly stop rests on: when Ctrl-C lands in the driver,
    nothing is cancelled (a cancel racing a task's start made Ray's core worker abort the
    driver); the tasks in flight finish, their rows are committed, and only then does the
    sweep return, so Ray shuts down with none pending."""
    flags = tmp_path / "flags"
    flags.mkdir()

    def hook(point_ids):
        try:  # the first chunk returns once another runs, so that one is in flight
            os.close(os.open(flags / "first", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            for _ in range(500):
                if list(flags.glob("*.started")):
                    return
                time.sleep(0.01)
            return
        (flags / f"{point_ids[0]}.started").touch()
        time.sleep(1.0)
        (flags / f"{point_ids[0]}.ended").touch()

    added: list[int] = []
    real_add = store.PartWriter.add

    def add(self, rows):  # Ctrl-C lands while the driver commits the first chunk
        added.append(rows.num_rows)
        if len(added) == 1:
            raise KeyboardInterrupt
        real_add(self, rows)

    monkeypatch.setattr(store.PartWriter, "add", add)
    with pytest.raises(KeyboardInterrupt) as info:
        run(tmp_path, "s", *GRID, "sweep.chunk_size=2", task_hook=hook)
    # what asi-sweep's last line says stays is what the store holds
    parts, rows = store.part_files(tmp_path / "s"), store.read(tmp_path / "s").num_rows
    assert (info.value.parts, info.value.points) == (len(parts), rows) and rows > 0
    assert interrupted_line(info.value) == (
        f"asi-sweep: interrupted; {rows:,} points in {len(parts)} part file(s) committed to "
        f"{tmp_path / 's'} stay, rerun to resume"
    )
    started = {p.stem for p in flags.glob("*.started")}
    ended = {p.stem for p in flags.glob("*.ended")}
    assert started, "no task was in flight when the interrupt came"
    assert ended == started  # all finished before the sweep returned
    assert len(added) - 1 >= len(started)  # their rows went to the store, not away
    assert store.read(tmp_path / "s").num_rows == sum(added[1:])
    assert len(stored(tmp_path / "s")) < GRID_POINTS  # and nothing new was started
