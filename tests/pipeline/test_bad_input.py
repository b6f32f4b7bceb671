"""Generated bad input: every override set ends in one line naming the field, exit 2,
and leaves the results store byte-for-byte as it was.

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

import pytest
from hypothesis import given

from pipeline.cli.answer import main as answer_main
from pipeline.cli.sweep import main as sweep_main
from pipeline.store.parts import QUARANTINE, part_files
from tests.pipeline.report_fixtures import write_store
from tests.profiles import bad_input_examples, bad_input_settings
from tests.strategies import bad_override_sets, bad_sweep_override_sets

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


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: relative path -> (size, SHA-256)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_rejected(code: int, out: str, err: str, argv: list[str], field: str) -> None:
    """One line on stderr, ``error: ...`` naming ``field``; exit 2; nothing on stdout."""
    assert code == 2, (argv, err)
    assert out == "", (argv, out)
    assert err.endswith("\n") and err.count("\n") == 1, (argv, err)
    assert err.startswith("error: "), (argv, err)
    assert "Traceback" not in err
    assert field in err, (argv, field, err)


def feed(main, strategy, store: Path, cwd: Path, fixed: list[str]) -> int:
    """Run ``main`` on :data:`EXAMPLES` (or the profile's) generated override sets; how many ran.

    ``fixed`` come first, so a bad override of the same key wins (Hydra keeps
    the last). After each case the store and the working directory are
    exactly as before.
    """
    before = snapshot(store)
    seen = []

    @bad_input_settings(EXAMPLES)
    @given(strategy)
    def check(case):
        overrides, field = case
        seen.append(overrides)
        argv = [*fixed, *overrides]
        assert_rejected(*run_main(main, argv), argv, field)
        assert snapshot(store) == before, argv
        assert list(cwd.iterdir()) == [], argv

    check()
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


def refuse_to_execute(grid, cfg, **kwargs):
    raise ReachedExecution(f"validation passed a bad sweep of {len(grid)} points")


def test_asi_sweep_rejects_bad_overrides_in_one_line(guarded_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's sweep directory is relative: it must stay unmade
    # Validation must stop every case before the store is opened; one that slips through
    # fails here at once instead of running a sweep (and a slow shrink) on bad input.
    monkeypatch.setattr("pipeline.sweep.run.execute", refuse_to_execute)
    fixed = [f"store.path={guarded_store}", "sweep.progress=false"]
    assert feed(
        sweep_main, bad_sweep_override_sets, guarded_store, tmp_path, fixed
    ) >= bad_input_examples(EXAMPLES)
