"""The package installs anywhere: a built wheel in a fresh venv, and Ray through ``ray://``.

Both are slow (a wheel build and a venv, or a Ray head node) and run in CI
(``make test`` runs every test). The fresh venv borrows this environment's
dependencies through a ``.pth`` line instead of downloading them, so the test
needs no network; only the project itself comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(cmd, cwd, env=None, timeout=300, check=True):
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel installed (not editable); deps borrowed from this venv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a clean copy: the build never writes into the checkout
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO).stdout
    for name in files.split():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", dist, source], root)  # fmt: skip
    (wheel,) = dist.glob("asi_slowdown-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], root)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "-q", wheel], root)  # fmt: skip
    return venv, wheel


def test_the_wheel_ships_the_configs(installed):
    import zipfile

    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"pipeline/conf/config.yaml", "pipeline/conf/cpu/sapphire_rapids.yaml",
            "pipeline/conf/validation/rfc_v2.yaml",
            "pipeline/report/templates/report.html.j2",
            "hydra_plugins/asi_slowdown/grid_sweeper.py"} <= names  # fmt: skip


def test_installed_commands_work_from_any_directory(installed, tmp_path):
    venv, _ = installed
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASI_CONFIG_DIR")}
    where = run(
        [bin_ / "python", "-c", "import pipeline.conf, pipeline; print(pipeline.__file__)"],
        tmp_path,
        env,
    )
    assert str(venv) in where.stdout, "the wheel, not the checkout, is imported"

    answer = run([bin_ / "asi-answer", "samples=64", "answer.source=model"], tmp_path, env)
    assert "metadata_mapped" in answer.stdout and "Long term" in answer.stdout

    sweep = run([bin_ / "asi-sweep", "cpus=1,2", "mitigations=rfc_v2,multi_slot", "samples=16",
                 "ray.num_cpus=1", "sweep.progress=false"], tmp_path, env)  # fmt: skip
    assert "stored 4 points" in sweep.stdout
    assert len(list((tmp_path / "outputs" / "store").glob("part-*.parquet"))) >= 1
    summary = next((tmp_path / "outputs" / "sweeps").rglob("summary.json"))
    assert json.loads(summary.read_text())["ok"] is True

    calibrated = run([bin_ / "asi-calibrate", "measurements=rfc_v2", "calibrate.name=lab",
                      "samples=64"], tmp_path, env)  # fmt: skip
    written = tmp_path / "outputs" / "conf" / "cpu" / "lab.yaml"
    assert f"wrote {written}" in calibrated.stdout
    assert not list(venv.rglob("cpu/lab.yaml")), "nothing is written into the installed package"
    again = run([bin_ / "asi-answer", "cpu=lab", "samples=64", "answer.format=json"], tmp_path, env)
    stages = run([bin_ / "asi-answer", "--cfg", "job", "-p", "roadmap.stages"], tmp_path, env)
    assert len(json.loads(again.stdout)["stages"]) == stages.stdout.count("- ") >= 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RAY_ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
"""Ray 2.60 turns token authentication on for a head node once a local ``ray.init`` has
saved a token; a ``ray://`` client then needs ``RAY_AUTH_MODE=token`` too. The test's
head and client run without it (loopback only)."""


@pytest.fixture
def ray_head():
    """A local Ray head with a client server on 127.0.0.1 (its own process group, ended after)."""
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit
    port, client = free_port(), free_port()
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            f"--ray-client-server-port={client}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=RAY_ENV,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client)) == 0:
                    break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray head did not start: {head.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client}"
    finally:
        head.send_signal(signal.SIGTERM)  # --block: ray start stops the node it started
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_sweep_through_a_ray_client_address(ray_head, tmp_path):
    store = tmp_path / "store"
    done = run(
        [
            Path(sys.executable).parent / "asi-sweep",
            "cpus=1,2,4",
            "samples=16",
            f"ray.address={ray_head}",
            f"store.path={store}",
            "sweep.progress=false",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],  # fmt: skip
        tmp_path,
        env=RAY_ENV,
        timeout=240,
    )
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["ok"] and summary["done"] == 3, done.stdout
    assert "stored 3 points" in done.stdout
