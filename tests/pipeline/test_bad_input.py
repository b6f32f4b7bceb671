"""Generated bad input: every override set ends in one line naming the field, exit 2,
and leaves the results store, the nightly history and every output folder byte-for-byte
as they were. All four commands: ``asi-answer``, ``asi-sweep``, ``asi-report``,
``asi-calibrate``.

Each entry point is called in-process through its real ``main(argv)`` (the
console script's function: Hydra's app, the grid sweeper, the error handler),
which is what makes hundreds of cases affordable: composition dominates.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import socket
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given

from asi_slowdown.pipeline.cli.answer import main as answer_main
from asi_slowdown.pipeline.cli.calibrate import main as calibrate_main
from asi_slowdown.pipeline.cli.report import main as report_main
from asi_slowdown.pipeline.cli.sweep import main as sweep_main
from asi_slowdown.pipeline.store.parts import QUARANTINE, part_files
from tests.pipeline.report_fixtures import write_store
from tests.profiles import bad_input_examples, bad_input_settings
from tests.strategies import (
    bad_calibrate_override_sets,
    bad_override_sets,
    bad_report_override_sets,
    bad_sweep_override_sets,
)

pytestmark = [pytest.mark.fault, pytest.mark.bad_input]

EXAMPLES = 200
"""Override sets per entry point and run (the acceptance floor); the exhaustive
profile raises it to 1000 (``make test-exhaustive``, :mod:`tests.profiles`)."""

GUARDED_GRID = ("cpus=1,2", "mitigations=rfc_v2,multi_slot", "samples=16")


def run_main(main, argv):
    err, out = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        pytest.raises(SystemExit) as exited,
    ):
        main(argv)
    return exited.value.code, out.getvalue(), err.getvalue()


def dead_pid() -> int:
    """The id of a process that has ended (so its temporary parts count as stale)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def guarded_store(tmp_path_factory) -> Path:
    """A non-empty store that any store access would change.

    Committed parts, one truncated part (every reader would quarantine it)
    and a dead writer's temporary file (every sweep would remove it): if bad
    input reached the store at all, the snapshot would differ.
    """
    store = tmp_path_factory.mktemp("guarded") / "store"
    write_store(store, GUARDED_GRID, chunk_rows=2)
    parts = part_files(store)
    data = parts[-1].read_bytes()
    parts[-1].write_bytes(data[: len(data) // 2])
    litter = f".{parts[0].name}.{dead_pid()}@{socket.gethostname()}.tmp"
    (store / litter).write_bytes(b"half a part")
    return store


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Everything under ``roots``: path -> (size, SHA-256) for a file, (-1, "dir") for a folder."""
    return {
        str(p): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        if p.is_file()
        else (-1, "dir")
        for root in roots
        for p in sorted(root.rglob("*"))
    }


def assert_rejected(code: int, out: str, err: str, argv: list[str], field: str) -> None:
    """One line on stderr, ``error: ...`` naming ``field``; exit 2; nothing on stdout."""
    assert code == 2, (argv, err)
    assert out == "", (argv, out)
    assert err.endswith("\n") and err.count("\n") == 1, (argv, err)
    assert err.startswith("error: "), (argv, err)
    assert "Traceback" not in err
    assert field in err, (argv, field, err)


def feed(main, strategy, store: Path | list[Path], cwd: Path, fixed: list[str]) -> int:
    """Run ``main`` on :data:`EXAMPLES` (or the profile's) generated override sets; how many ran.

    ``fixed`` come first, so a bad override of the same key wins (Hydra keeps
    the last). After each case the guarded folders (``store``: the results
    store, or a list of folders) and the working directory are exactly as before.
    """
    guarded = store if isinstance(store, list) else [store]
    before = snapshot(*guarded)
    seen = []

    @bad_input_settings(EXAMPLES)
    @given(strategy)
    def check(case):
        overrides, field = case
        seen.append(overrides)
        argv = [*fixed, *overrides]
        assert_rejected(*run_main(main, argv), argv, field)
        assert snapshot(*guarded) == before, argv
        assert list(cwd.iterdir()) == [], argv

    check()
    print(f"{main.__module__}: {len(seen)} generated override sets")
    return len(seen)


def test_guarded_store_is_what_a_reader_would_change(guarded_store):
    names = {p.name for p in guarded_store.iterdir()}
    assert any(n.startswith(".part-") and n.endswith(".tmp") for n in names)
    assert QUARANTINE not in names
    assert len(part_files(guarded_store)) == 2


def test_asi_answer_rejects_bad_overrides_in_one_line(guarded_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fixed = [f"store.path={guarded_store}"]
    assert feed(
        answer_main, bad_override_sets, guarded_store, tmp_path, fixed
    ) >= bad_input_examples(EXAMPLES)


class ReachedExecution(AssertionError):
    """Bad input got past validation: raised instead of starting Ray on it."""


def refuse_to_execute(*args, **kwargs):
    raise ReachedExecution("validation passed bad input on to the work")


def test_asi_sweep_rejects_bad_overrides_in_one_line(guarded_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's sweep directory is relative: it must stay unmade
    # Validation must stop every case before the store is opened; one that slips through
    # fails here at once instead of running a sweep (and a slow shrink) on bad input.
    monkeypatch.setattr("asi_slowdown.pipeline.sweep.run.execute", refuse_to_execute)
    fixed = [f"store.path={guarded_store}", "sweep.progress=false"]
    assert feed(
        sweep_main, bad_sweep_override_sets, guarded_store, tmp_path, fixed
    ) >= bad_input_examples(EXAMPLES)


# --------------------------------------------------------------------------- asi-report
@pytest.fixture(scope="module")
def guarded_history(tmp_path_factory) -> Path:
    """A nightly history with one recorded night: a nightly report would add a part."""
    history = tmp_path_factory.mktemp("guarded") / "history"
    night = history / "date=2026-01-30"
    night.mkdir(parents=True)
    table = pa.table({"workload": ["fio_randread_tmpfs"], "slowdown_p50": [0.05]})
    pq.write_table(table, night / "part-20260130T000000000000Z.parquet")
    return history


@pytest.fixture
def guarded_report_dir(tmp_path_factory) -> Path:
    """A report folder that holds a report: rendering into it would rewrite its files."""
    folder = tmp_path_factory.mktemp("guarded") / "report"
    folder.mkdir()
    (folder / "index.html").write_text("<p>an earlier report</p>")
    return folder


def test_asi_report_rejects_bad_overrides_in_one_line(
    guarded_store, guarded_history, guarded_report_dir, tmp_path_factory, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    # Every case must stop before the grid is expanded or the store read (the aggregation
    # would quarantine the guarded store's truncated part); one that gets further fails at once.
    monkeypatch.setattr("asi_slowdown.pipeline.report.build.experiment_grid", refuse_to_execute)
    monkeypatch.setattr("asi_slowdown.pipeline.report.build.aggregate", refuse_to_execute)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    a_file = elsewhere / "a_file"
    a_file.write_text("not a folder")
    fixed = [
        f"store.path={guarded_store}",
        f"report.history={guarded_history}",
        f"report.dir={guarded_report_dir}",
        "dask.progress=false",
    ]
    strategy = bad_report_override_sets(str(a_file), str(elsewhere / "missing"))
    guarded = [guarded_store, guarded_history, guarded_report_dir, elsewhere]
    assert feed(report_main, strategy, guarded, tmp_path, fixed) >= bad_input_examples(EXAMPLES)


# --------------------------------------------------------------------------- asi-calibrate
def test_asi_calibrate_rejects_bad_overrides_in_one_line(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("asi_slowdown.pipeline.calibrate.run.fit", refuse_to_execute)
    outputs = tmp_path_factory.mktemp("guarded")
    conf, reports = outputs / "conf", outputs / "calibration"
    # An earlier calibration under the same name: a run that got as far as writing would
    # replace both files.
    (conf / "cpu").mkdir(parents=True)
    (conf / "cpu" / "fuzzed.yaml").write_text("# Calibrated CPU profile written by asi-calibrate\n")
    (reports / "fuzzed").mkdir(parents=True)
    (reports / "fuzzed" / "report.md").write_text("an earlier report\n")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    a_file, wrong_suffix, empty = elsewhere / "a_file", elsewhere / "notes.txt", elsewhere / "empty"
    a_file.write_text("not a folder")
    wrong_suffix.write_text("file,asi\n")
    empty.mkdir()
    fixed = [
        "measurements=rfc_v2",
        f"calibrate.conf_dir={conf}",
        f"calibrate.report_dir={reports}",
    ]
    strategy = bad_calibrate_override_sets(str(a_file), str(wrong_suffix), str(empty))
    guarded = [outputs, elsewhere]
    assert feed(calibrate_main, strategy, guarded, tmp_path, fixed) >= bad_input_examples(EXAMPLES)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("report.focus.file_size=0", "report.focus.file_size"),  # no workload has 0 bytes
        ("report.dir={a_file}/sub", "report.dir"),  # under a file: render fails after the work
        ("report.history={a_file}", "report.history"),  # nightly: recording fails after the work
    ],
)
def test_asi_report_bad_paths_and_sizes_found_by_generation(
    guarded_store, guarded_history, tmp_path_factory, tmp_path, monkeypatch, override, field
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("asi_slowdown.pipeline.report.build.experiment_grid", refuse_to_execute)
    monkeypatch.setattr("asi_slowdown.pipeline.report.build.aggregate", refuse_to_execute)
    a_file = tmp_path_factory.mktemp("elsewhere") / "a_file"
    a_file.write_text("not a folder")
    argv = [
        f"store.path={guarded_store}",
        f"report.history={guarded_history}",
        f"report.dir={tmp_path_factory.mktemp('report')}",
        "report.mode=nightly",
        "dask.progress=false",
        override.format(a_file=a_file),
    ]
    before = snapshot(guarded_store, guarded_history)
    assert_rejected(*run_main(report_main, argv), argv, field)
    assert snapshot(guarded_store, guarded_history) == before
