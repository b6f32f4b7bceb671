"""The nightly history under faults: damaged parts, dead writers' litter, a full disk, read-only.

The history's nights are folders of part files checked with the results
store's machinery (:mod:`pipeline.store`); these tests pin down that every
read path of the history does what the store's does (``test_store_integrity.py``),
and that ``asi-report report.mode=nightly`` still renders and exits 0 when a
night cannot be read.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.projection import history as hist
from asi_slowdown.pipeline.report.collection import nightly
from asi_slowdown.pipeline.store import parts
from asi_slowdown.pipeline.store.parts import QUARANTINE

from .report_fixtures import nightly_stub, write_store

pytestmark = pytest.mark.fault

FINAL = "kvm_vmm_switch"
CPU = "sapphire_rapids"


def night_rows(slowdown: float = 0.02, cpus: int = 4, workload: str = "fork_exec") -> pd.DataFrame:
    """One focus projection row at the last stage, every :data:`hist.KEYS` and VALUES column."""
    values = {
        v: [slowdown] if v.startswith(("slowdown", "throughput", "p_")) else ["x"]
        for v in hist.VALUES
    }
    keys = {"workload": [workload], "cpu": [CPU], "stage": [FINAL]}
    keys |= {"cpus": [cpus], "file_size": [1 << 30], "ephmap_slots": [2]}
    return pd.DataFrame({**keys, **values}).assign(stage_index=7, verdict="meets target")


def three_nights(history: Path) -> list[Path]:
    """Nights 2026-01-01..03 recorded, slowdown 1, 2, 3 %; their parts."""
    return [hist.record(history, night_rows(0.01 * (i + 1)), f"2026-01-0{i + 1}") for i in range(3)]


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------- committing
def test_a_night_is_committed_like_a_store_part(tmp_path):
    part = hist.record(tmp_path, night_rows(), "2026-01-01")
    assert part.parent == tmp_path / "date=2026-01-01"
    assert store.name_digest(part.name) == store.content_digest(part.read_bytes())
    store.verify(part)
    assert [p.name for p in part.parent.iterdir()] == [part.name]  # no temporary left


@pytest.mark.parametrize("where", ["write", "rename"])
def test_a_full_disk_during_the_record_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, where):
    three_nights(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "write":
        monkeypatch.setattr(os, "fsync", no_space)  # after the bytes went to the temporary
    else:
        monkeypatch.setattr(parts, "_publish", no_space)
    with pytest.raises(hist.HistoryWriteError) as failed:
        hist.record(tmp_path, night_rows(0.09), "2026-01-03")
    message = str(failed.value)
    assert "\n" not in message and isinstance(failed.value, OSError)
    assert message.startswith(f"cannot record the night 2026-01-03 in the history {tmp_path}: ")
    assert "No space left on device" in message and "earlier nights are intact" in message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    rows, unreadable = hist.read(tmp_path)
    assert list(rows["slowdown_p50"]) == [0.01, 0.02, 0.03] and unreadable == []


def test_a_night_that_cannot_be_recorded_still_gives_the_comparison(tmp_path, monkeypatch):
    """The report is the result: a full disk costs tonight's record, not the report."""
    hist.record(tmp_path, night_rows(0.01), "2026-01-01")
    monkeypatch.setattr(
        parts, "_publish", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
    )
    report, lines = nightly_stub(tmp_path, "2026-01-02", night_rows(0.05))
    nightly(report, lines.append)
    assert report.history_error and report.history_error.startswith(
        "cannot record the night 2026-01-02"
    )
    assert f"error: {report.history_error}" in lines
    assert report.previous_night == "2026-01-01"
    assert report.comparison.iloc[0]["status"] == "moved"


# --------------------------------------------------------------------------- damaged parts
def damage(part: Path, how: str) -> bytes:
    """Truncate ``part`` or flip one bit in its middle (data pages); its new bytes."""
    data = bytearray(part.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x01
    part.write_bytes(bytes(data))
    return bytes(data)


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_night_is_quarantined_named_and_left_out(tmp_path, how):
    part = three_nights(tmp_path)[1]
    damaged = damage(part, how)
    rows, unreadable = hist.read(tmp_path)
    assert sorted(rows["date"]) == ["2026-01-01", "2026-01-03"]
    assert list(rows["slowdown_p50"]) == [0.01, 0.03]  # a flipped bit is never read as a value
    moved = part.parent / QUARANTINE / part.name
    assert unreadable == [hist.Unreadable("2026-01-02", part, moved, night_lost=True)]
    assert not part.exists() and moved.read_bytes() == damaged  # moved aside, never deleted
    warning = unreadable[0].warning()
    assert "\n" not in warning and warning.startswith("warning: ")
    assert "night 2026-01-02" in warning and f"moved to {moved}" in warning
    assert "drawn without that night" in warning
    # pyarrow's own discovery skips the quarantine and the index: the history reads as is.
    assert ds.dataset(tmp_path, format="parquet", partitioning="hive").count_rows() == 2
    assert hist.read(tmp_path)[1] == []  # moved once: the next read is clean


def test_a_night_with_another_intact_recording_keeps_it(tmp_path):
    """A history of earlier versions, which kept every recording of a night (today's
    :func:`hist.record` replaces the night's earlier recording)."""
    first = hist.record(tmp_path, night_rows(0.01), "2026-01-01")
    kept = first.read_bytes()
    later = hist.record(tmp_path, night_rows(0.02), "2026-01-01")
    assert not first.exists()  # replaced
    first.write_bytes(kept)
    damage(later, "truncate")
    rows, unreadable = hist.read(tmp_path)
    assert list(hist.nights(rows)["slowdown_p50"]) == [0.01]
    assert not unreadable[0].night_lost
    assert "the night's other recording is used" in unreadable[0].warning()


def test_a_read_only_history_never_claims_a_move(tmp_path, monkeypatch):
    part = three_nights(tmp_path)[2]
    damage(part, "truncate")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "rename", read_only)  # what quarantine() moves a part with
    for _ in range(2):  # skipped again by every read, never read
        rows, unreadable = hist.read(tmp_path)
        assert sorted(rows["date"]) == ["2026-01-01", "2026-01-02"]
        assert [u.moved_to for u in unreadable] == [None]
        warning = unreadable[0].warning()
        assert "moved to" not in warning and f"left in place at {part}" in warning
    assert part.exists() and not (part.parent / QUARANTINE / part.name).exists()


def test_parts_of_earlier_versions_stay_readable_and_are_checked_by_their_footer(tmp_path):
    """Nights recorded before the digest: ``part-<UTC time>.parquet``, written by pyarrow."""
    folder = tmp_path / "date=2026-01-01"
    folder.mkdir()
    legacy = folder / "part-20260101T030000000000Z.parquet"
    frame = night_rows(0.01).assign(recorded_at=pd.Timestamp("2026-01-01T03:00", tz="UTC"))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), legacy)
    hist.record(tmp_path, night_rows(0.02), "2026-01-02")
    rows, unreadable = hist.read(tmp_path)
    assert list(rows["slowdown_p50"]) == [0.01, 0.02] and unreadable == []
    damage(legacy, "truncate")
    rows, unreadable = hist.read(tmp_path)
    assert list(rows["date"]) == ["2026-01-02"]
    assert [u.moved_to for u in unreadable] == [folder / QUARANTINE / legacy.name]


# --------------------------------------------------------------------------- temporaries
def test_a_dead_writers_temporary_is_removed_a_live_ones_stays(tmp_path):
    part = three_nights(tmp_path)[0]
    host = socket.gethostname()
    folder = part.parent
    dead = folder / store.temporary_name(part.name).replace(f".{os.getpid()}@", f".{dead_pid()}@")
    live = folder / store.temporary_name("part-20260101T000000000000Z-x-00000.parquet")
    old_style = folder / ".part-20260101T000000000000Z.parquet.tmp"  # earlier versions' name
    for tmp in (dead, live, old_style):
        tmp.write_bytes(b"half a part")
    past = time.time() - 2 * store.STALE_TMP_SECONDS
    os.utime(old_style, (past, past))
    assert f"@{host}.tmp" in dead.name
    rows, unreadable = hist.read(tmp_path)
    assert len(rows) == 3 and unreadable == []  # a temporary is never a night
    assert not dead.exists() and not old_style.exists() and live.exists()


# --------------------------------------------------------------------------- asi-report
def test_asi_report_nightly_renders_and_exits_0_with_a_damaged_night(tmp_path, capsys):
    from asi_slowdown.pipeline.cli.report import main

    data = tmp_path / "store"
    write_store(data, ("mitigations=glob(*)", "cpus=1", "samples=16"), chunk_rows=64)
    history = tmp_path / "history"
    hist.record(history, night_rows(0.01, workload="fio_randread_tmpfs", cpus=1), "2026-01-01")
    bad = hist.record(
        history, night_rows(0.02, workload="fio_randread_tmpfs", cpus=1), "2026-01-02"
    )
    damage(bad, "truncate")
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                f"store.path={data}",
                f"report.dir={tmp_path / 'report'}",
                f"report.history={history}",
                "samples=16",
                "dask.progress=false",
                "report.whole_store=true",
                "report.mode=nightly",
                "report.date=2026-01-03",
            ]
        )
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, err
    moved = bad.parent / QUARANTINE / bad.name
    warning = next(line for line in err.splitlines() if line.startswith("warning: "))
    assert "night 2026-01-02" in warning and str(moved) in warning
    assert moved.is_file() and not bad.exists()
    assert "Traceback" not in err and "compared with 2026-01-01" in err
    index = tmp_path / "report" / "index.html"
    assert out.strip().endswith(f"asi-report: report in {index}")
    html = index.read_text()
    assert "history-warning" in html and "night 2026-01-02" in html
    assert "Compared with the previous night (2026-01-01)" in html
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "night 2026-01-02" in summary
    trend = summary.split("[Nightly trend")[1].splitlines()[0]
    assert "From 2 night(s)" in trend  # 2026-01-01 and tonight, not the damaged night
