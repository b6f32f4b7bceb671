"""The package installs anywhere: a built wheel in a fresh venv, and Ray by cluster address.

Both are slow (a wheel build and a venv, or a Ray head node) and run in CI
(``make test`` runs every test). The fresh venv borrows this environment's
dependencies through a ``.pth`` line instead of downloading them, so the test
needs no network; only the project itself comes from the wheel.
"""

from __future__ import annotations

import contextlib
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
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-w", dist, source], root)  # fmt: skip
    (root / "build.log").write_text(built.stdout + built.stderr)
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
    assert {"asi_slowdown/pipeline/conf/config.yaml",
            "asi_slowdown/pipeline/conf/cpu/sapphire_rapids.yaml",
            "asi_slowdown/pipeline/conf/validation/rfc_v2.yaml",
            "asi_slowdown/pipeline/report/templates/report.html.j2",
            "asi_slowdown/model/kernel.py",
            "hydra_plugins/asi_slowdown/grid_sweeper.py"} <= names  # fmt: skip


def test_building_says_nothing_to_worry_about_and_leaves_the_checkout_as_it_was(installed):
    """``pip install /path/to/checkout`` left ``build/`` (and ``*.egg-info``) in the checkout,
    and the first ``make sweep`` printed ~560 lines of setuptools warnings (a conf/ group
    setuptools did not know, a deprecated license table): the build backend builds from a
    copy (tools/build_backend.py), and pyproject.toml lists every group."""
    _, wheel = installed
    root = wheel.parent.parent
    source = root / "source"
    log = (root / "build.log").read_text()
    assert "Warning" not in log and "deprecated" not in log, log
    assert not [p.name for p in source.iterdir() if p.name == "build" or "egg-info" in p.name]
    # the editable install of `make setup`: setuptools' hook, as quiet
    editable = run([sys.executable, "-c", "import sys; sys.path.insert(0, 'tools'); "
                    "import build_backend as b; b.build_editable(sys.argv[1])",
                    root / "editable"], source)  # fmt: skip
    said = editable.stdout + editable.stderr
    assert "Package would be ignored" not in said and "deprecated" not in said, said


def test_installed_commands_work_from_any_directory(installed, tmp_path):
    venv, _ = installed
    bin_ = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASI_CONFIG_DIR")}
    where = run(
        [bin_ / "python", "-c", "import asi_slowdown.pipeline.conf as c, asi_slowdown.pipeline as p;"
         "print(p.__file__)"],
        tmp_path,
        env,
    )  # fmt: skip
    assert str(venv) in where.stdout, "the wheel, not the checkout, is imported"
    # every top-level name the wheel installs is the project's own (or Hydra's plugin namespace)
    files = run([bin_ / "python", "-c", "from importlib.metadata import files;"
                 "print('\\n'.join(str(f) for f in files('asi-slowdown')))"], tmp_path, env)  # fmt: skip
    tops = {line.split("/")[0] for line in files.stdout.split()}
    tops = {top for top in tops if not top.endswith(".dist-info") and top not in ("..", "bin")}
    assert tops == {"asi_slowdown", "hydra_plugins"}, tops

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


def ray_env(home: Path) -> dict[str, str]:
    """The environment of a process on a machine whose home is ``home``: Ray finds its token
    there (``.ray/auth_token``) and nowhere else (no RAY_AUTH_* variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}


def ray_processes(temp: str) -> list:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(temp in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


@pytest.fixture
def token_head(tmp_path_factory):
    """A Ray head started as a user starts one (`ray start --head`) on a machine that has a
    token: Ray 2.60 turns token authentication on. Loopback only, its own temp dir and
    process group; every process it started is gone after (checked)."""
    home = tmp_path_factory.mktemp("home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("asi-slowdown-test-token-" + os.urandom(16).hex())
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
        env=ray_env(home),
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", client)) == 0:
                    break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray head did not start: {head.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        yield {"client": f"ray://127.0.0.1:{client}", "gcs": f"127.0.0.1:{port}", "home": home}
    finally:
        head.send_signal(signal.SIGTERM)  # --block: ray start stops the node it started
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # its own group: only what it started
        deadline = time.monotonic() + 15
        while (left := ray_processes(temp)) and time.monotonic() < deadline:
            time.sleep(0.5)
        for process in left:  # Ray's agents outside the group: the temp dir names them
            with contextlib.suppress(Exception):
                process.kill()
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"ray start left {[p.pid for p in left]} running"


def asi_sweep(address: str, home: Path, tmp_path: Path, name: str):
    """``asi-sweep -m cpus=1,2,4 ray=cluster ray.address=<address>`` as the README has it."""
    return run(
        [
            Path(sys.executable).parent / "asi-sweep",
            "cpus=1,2,4",
            "samples=16",
            "ray=cluster",
            f"ray.address={address}",
            f"store.path={tmp_path / name / 'store'}",
            "sweep.progress=false",
            f"hydra.sweep.dir={tmp_path / name / 'sweep'}",
        ],  # fmt: skip
        tmp_path,
        env=ray_env(home),
        timeout=240,
        check=False,
    )


def test_sweeps_reach_a_token_cluster_by_either_address_or_say_in_one_line_what_is_missing(
    token_head, tmp_path
):
    """``ray=cluster`` ships the code to the workers (``py_modules``) through ``ray://``, and
    both address forms present this machine's token without ``RAY_AUTH_MODE``. A machine
    without the token (or with another) is told where to put the head's, in one line before
    Ray is tried, instead of half a minute of InvalidAuthToken lines. One test, so one head
    (~10 s to start on 2 cores) serves every case whatever worker runs it."""
    for form in ("client", "gcs"):
        done = asi_sweep(token_head[form], token_head["home"], tmp_path, form)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads((tmp_path / form / "sweep" / "summary.json").read_text())
        assert summary["ok"] and summary["done"] == 3, done.stdout
        assert "stored 3 points" in done.stdout
        assert "InvalidAuthToken" not in done.stderr

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".ray").mkdir(parents=True)
    for form, token in (("client", None), ("gcs", "not-the-heads-token")):
        if token is not None:
            (elsewhere / ".ray" / "auth_token").write_text(token)
        done = asi_sweep(token_head[form], elsewhere, tmp_path, f"{form}-{token}")
        assert done.returncode == 2, done.stderr[-3000:]
        (line,) = done.stderr.strip().splitlines()
        refused = "refused this machine's token" if token else "this machine has none"
        assert line.startswith("error: ray.address: the cluster at ") and refused in line
        assert "ray get-auth-token" in line and "RAY_AUTH_TOKEN" in line
        assert not list((tmp_path / f"{form}-{token}").rglob("part-*")), "nothing stored"
