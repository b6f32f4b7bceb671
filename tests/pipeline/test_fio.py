"""Reading fio JSON: genuine outputs (committed and freshly run), and every way it can be bad."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.pipeline.calibrate.fio import decode_fio_json, file_sha256, read_fio, summarize
from asi_slowdown.pipeline.calibrate.run import run as calibrate
from asi_slowdown.pipeline.configuration.compose import compose_config
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.configuration.profile import model_profile, point_from_config

DATA = Path(__file__).resolve().parent.parent / "data" / "fio"
ROOT = Path(__file__).resolve().parents[2]
FIO = shutil.which("fio")
needs_fio = pytest.mark.skipif(
    FIO is None, reason="fio is not installed (`make sysdeps` installs the Debian package)"
)


def _job(name: str) -> dict:
    return json.loads((DATA / name).read_text())["jobs"]


# --------------------------------------------------------------------------- committed outputs
def test_one_job_rates_are_fio_counters_per_io():
    (job,) = _job("randread_1job.json")
    run = read_fio(DATA / "randread_1job.json")
    ios = job["read"]["total_ios"]
    assert run.jobs == 1 and run.total_ios == ios and job["write"]["total_ios"] == 0
    assert run.time_per_op == pytest.approx(1e9 / job["read"]["iops"])
    runtime_ns = job["job_runtime"] * 1e6
    assert run.sys_per_op == pytest.approx(job["sys_cpu"] / 100 * runtime_ns / ios)
    assert run.usr_per_op == pytest.approx(job["usr_cpu"] / 100 * runtime_ns / ios)
    assert run.ctx_per_op == pytest.approx(job["ctx"] / ios)
    assert run.minf_per_op == pytest.approx(job["minf"] / ios)
    assert run.lat_mean == pytest.approx(job["read"]["lat_ns"]["mean"])
    assert (run.block_size, run.file_size, run.sequential) == (4096, 16 << 20, False)
    assert run.sha256 == file_sha256(DATA / "randread_1job.json")


def test_group_reporting_record_stands_for_numjobs_jobs():
    (job,) = _job("randread_2jobs_grouped.json")
    run = read_fio(DATA / "randread_2jobs_grouped.json")
    assert run.jobs == 2
    # Per-job wall time per I/O: two jobs share the aggregate IOPS.
    assert run.time_per_op == pytest.approx(2e9 / job["read"]["iops"])


def test_separate_job_records_are_summed():
    jobs = _job("randread_2jobs.json")
    run = read_fio(DATA / "randread_2jobs.json")
    assert len(jobs) == 2 and run.jobs == 2
    assert run.total_ios == sum(j["read"]["total_ios"] for j in jobs)
    assert run.iops == pytest.approx(sum(j["read"]["iops"] for j in jobs))
    assert run.ctx_per_op == pytest.approx(sum(j["ctx"] for j in jobs) / run.total_ios)


def test_reads_and_writes_both_count_as_ops():
    (job,) = _job("randrw_1job.json")
    run = read_fio(DATA / "randrw_1job.json")
    assert job["write"]["total_ios"] > 0
    assert run.total_ios == job["read"]["total_ios"] + job["write"]["total_ios"]
    assert run.iops == pytest.approx(job["read"]["iops"] + job["write"]["iops"])


def test_job_with_error_names_file_job_and_errno():
    with pytest.raises(ConfigError) as err:
        read_fio(DATA / "error_eio.json")
    message = str(err.value)
    assert "error_eio.json" in message and "'nullread'" in message
    assert "error 5 (Input/output error)" in message and "\n" not in message


# --------------------------------------------------------------------------- bad output
@pytest.fixture
def good_text() -> str:
    return (DATA / "randread_1job.json").read_text()


def _write(tmp_path: Path, text: str | bytes, name: str = "run.json") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_output_is_named(tmp_path, good_text, cut):
    path = _write(tmp_path, good_text[: int(len(good_text) * cut)])
    with pytest.raises(ConfigError, match=r"run\.json: fio JSON is truncated at line \d+"):
        read_fio(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no JSON object found"),
        ("fio: engine libaio not loadable\n", "no JSON object found"),
        ('{"fio version": "fio-3.33", "jobs": [}', "malformed"),
        ('{"fio version": "fio-3.33"}', "has no 'jobs' list"),
        ('{"jobs": []}', "has no 'jobs' list"),
        ('{"jobs": [42]}', "job 0 is not a JSON object"),
        (
            '{"jobs": [{"jobname": "x", "error": 0, "write": {}}]}',
            "job 0 ('x') has no 'read' section",
        ),
    ],
)
def test_malformed_output_is_named(tmp_path, text, problem):
    with pytest.raises(ConfigError) as err:
        read_fio(_write(tmp_path, text))
    assert str(err.value).startswith(f"{tmp_path / 'run.json'}: ")
    assert problem in str(err.value)


def test_wrong_typed_counter_is_named(tmp_path, good_text):
    doc = json.loads(good_text)
    doc["jobs"][0]["read"]["iops"] = "fast"
    with pytest.raises(
        ConfigError, match=r"job 0 \('randread_tmpfs'\) read: 'iops' must be a number"
    ):
        read_fio(_write(tmp_path, json.dumps(doc)))


def test_run_without_io_is_rejected(tmp_path, good_text):
    doc = json.loads(good_text)
    for direction in ("read", "write"):
        doc["jobs"][0][direction].update(total_ios=0, iops=0)
    with pytest.raises(ConfigError, match="completed no I/O"):
        read_fio(_write(tmp_path, json.dumps(doc)))


def test_text_fio_prints_before_the_json_is_skipped(good_text):
    doc = decode_fio_json("note: both iodepth >= 1 and synchronous I/O engine\n" + good_text, "x")
    assert doc["jobs"][0]["jobname"] == "randread_tmpfs"


@given(st.text(max_size=300))
def test_any_text_is_parsed_or_refused_in_one_line(text):
    try:
        summarize(decode_fio_json(text, "x.json"), "x.json")
    except ConfigError as exc:
        assert str(exc).startswith("x.json: ") and "\n" not in str(exc)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_FIELDS = (
    "jobname",
    "groupid",
    "error",
    "job options",
    "job_runtime",
    "usr_cpu",
    "sys_cpu",
    "ctx",
    "majf",
    "minf",
)
_SECTION = ("total_ios", "iops", "runtime", "lat_ns")


@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                **{k: _json for k in _FIELDS},
                "read": st.fixed_dictionaries({}, optional={k: _json for k in _SECTION}),
                "write": st.fixed_dictionaries({}, optional={k: _json for k in _SECTION}),
            },
        ),
        max_size=3,
    ),
    _json,
)
def test_any_job_records_give_a_run_or_a_one_line_error(jobs, global_options):
    """Wrong types and missing fields anywhere in fio's records: never a traceback."""
    doc = {"jobs": jobs, "global options": global_options}
    try:
        run = summarize(doc, "x.json")
    except ConfigError as exc:
        assert str(exc).startswith("x.json: ") and "\n" not in str(exc)
    else:
        assert run.total_ios > 0 and run.time_per_op > 0


_GENUINE = json.loads((DATA / "randread_2jobs_grouped.json").read_text())
_PATHS = [(k,) for k in _FIELDS if k in _GENUINE["jobs"][0]] + [
    (d, k) for d in ("read", "write") for k in _SECTION
]


@given(st.lists(st.tuples(st.sampled_from(_PATHS), _json), min_size=1, max_size=3))
def test_genuine_output_with_corrupted_fields_gives_a_run_or_a_one_line_error(edits):
    doc = json.loads(json.dumps(_GENUINE))
    for path, value in edits:
        target = doc["jobs"][0]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    try:
        run = summarize(doc, "x.json")
    except ConfigError as exc:
        assert str(exc).startswith("x.json: ") and "\n" not in str(exc)
    else:
        assert run.total_ios > 0 and np.isfinite(run.time_per_op) and run.time_per_op > 0


@given(st.integers(0, 4000))
def test_any_truncation_of_genuine_output_is_refused_in_one_line(cut):
    text = (DATA / "randread_2jobs.json").read_text()[:cut]
    with pytest.raises(ConfigError) as err:
        summarize(decode_fio_json(text, "x.json"), "x.json")
    assert "\n" not in str(err.value)


def test_binary_and_missing_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.json: not text"):
        read_fio(_write(tmp_path, b"\xff\xfe\x00garbage"))
    with pytest.raises(ConfigError, match=r"nope\.json: cannot read fio output"):
        read_fio(tmp_path / "nope.json")


# --------------------------------------------------------------------------- install script
def test_install_script_skips_cleanly_without_apt(tmp_path):
    """No apt-get on PATH: a clear message and exit 0, never a failed build."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "id"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(ROOT / "tools" / "install-system-deps.sh")],
        env={"PATH": str(bin_dir), "SYSDEPS_PACKAGES": "no-such-package-asi"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "apt-get not found" in result.stderr and "no-such-package-asi" in result.stderr


@needs_fio
def test_install_script_is_a_no_op_when_fio_is_there():
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "install-system-deps.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if shutil.which("dpkg-query"):
        assert "already installed: fio" in result.stdout


# --------------------------------------------------------------------------- genuine fio runs
def _tmpfs_dir(fallback: Path) -> Path:
    """A fresh directory on tmpfs (like the published benchmark), else under ``fallback``."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="asi-fio-", dir=shm))
    path = fallback / "fio-data"
    path.mkdir()
    return path


def run_fio(out: Path, workdir: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FIO, *options, f"--output={out}", "--output-format=json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def genuine_native(tmp_path_factory) -> Path:
    """fio 4 KiB random psync reads for 2 s on tmpfs, one job: a native run's JSON."""
    base = tmp_path_factory.mktemp("fio")
    data = _tmpfs_dir(base)
    out = base / "native.json"
    try:
        result = run_fio(
            out,
            data,
            "--name=randread_tmpfs",
            "--rw=randread",
            "--bs=4K",
            "--size=16M",
            f"--directory={data}",
            "--ioengine=psync",
            "--iodepth=1",
            "--time_based",
            "--runtime=2",
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.fio
@needs_fio
def test_genuine_fio_run_parses(genuine_native):
    run = read_fio(genuine_native)
    assert run.jobs == 1 and run.total_ios > 1000
    assert 0 < run.time_per_op < 1e6  # any machine does a cached 4 KiB read in under 1 ms
    assert (run.block_size, run.file_size, run.sequential) == (4096, 16 << 20, False)


@pytest.mark.fio
@needs_fio
def test_genuine_fio_error_is_rejected(tmp_path):
    """Reading /dev/null fails in fio itself (EIO): its JSON carries the error."""
    out = tmp_path / "eio.json"
    result = run_fio(
        out,
        tmp_path,
        "--name=nullread",
        "--rw=read",
        "--size=1M",
        "--bs=4K",
        "--filename=/dev/null",
    )
    assert result.returncode != 0
    with pytest.raises(ConfigError, match=r"eio\.json: job 0 \('nullread'\) failed with error 5"):
        read_fio(out)


@pytest.mark.fio
@needs_fio
def test_calibrating_on_genuine_fio_reproduces_native_iops(genuine_native, tmp_path):
    """Acceptance: the calibrated workload + profile give back the measured IOPS within 5 %."""
    measurements = tmp_path / "measurements"
    measurements.mkdir()
    shutil.copy(genuine_native, measurements / "native.json")
    (measurements / "manifest.yaml").write_text(
        "workload: fio_randread_tmpfs\nprofile: sapphire_rapids\n"
        "runs:\n  - {file: native.json, asi: false, cpus: 1}\n"
    )
    conf = tmp_path / "conf"
    outcome = calibrate(
        [
            f"measurements={measurements}",
            "calibrate.name=fio_here",
            f"calibrate.conf_dir={conf}",
            f"calibrate.report_dir={tmp_path / 'reports'}",
        ]
    )
    assert outcome.workload_paths == {
        "fio_randread_tmpfs": conf / "workload" / "fio_randread_tmpfs_fio_here.yaml"
    }
    cfg = compose_config(
        [
            f"hydra.searchpath=[file://{conf}]",
            "cpu=fio_here",
            "workload=fio_randread_tmpfs_fio_here",
        ]
    )
    result = evaluate(point_from_config(cfg), model_profile(cfg).costs())
    measured = read_fio(genuine_native)
    predicted_iops = cfg.cpus * 1e9 / result["t_native_mean"][0]
    assert predicted_iops == pytest.approx(measured.iops, rel=0.05)
    # The event rates measured natively landed in the workload file.
    assert cfg.workload.ctxsw_per_op == pytest.approx(measured.ctx_per_op, rel=1e-3, abs=1e-9)
    assert cfg.workload.file_size == "16M"
    inputs = {Path(i["path"]).name: i["sha256"] for i in cfg.cpu.provenance.inputs}
    assert inputs["native.json"] == file_sha256(genuine_native)
    assert "native IOPS" in outcome.report_path.read_text()
