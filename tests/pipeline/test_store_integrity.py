"""Store integrity without Ray: digests, quarantine, temporaries of dead writers, failed commits.

The end-to-end versions (a real sweep killed, a real disk filled) are in
``test_faults.py``; these pin each rule down on hand-made parts.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.report import aggregate
from asi_slowdown.pipeline.store import parts
from asi_slowdown.pipeline.store.parts import QUARANTINE
from tests.pipeline.test_store import worker_rows

pytestmark = pytest.mark.fault

SEED = 6


def three_parts(path: Path) -> list[Path]:
    """Parts of ids a0-a3, b0-b3, c0-c3, committed in that order."""
    return [
        store.write_part(path, worker_rows([f"{x}{i}" for i in range(4)]), "run1", seq)
        for seq, x in enumerate("abc")
    ]


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --------------------------------------------------------------------------- digests
def test_a_part_is_named_after_a_digest_of_its_bytes(tmp_path):
    part = store.write_part(tmp_path, worker_rows(["a"]), "run1", 0)
    assert store.name_digest(part.name) == store.content_digest(part.read_bytes())
    assert len(store.name_digest(part.name)) == store.DIGEST_CHARS
    store.verify(part)  # no error
    assert store.name_digest("part-20260101T000000000000Z-run1-00000.parquet") is None


@pytest.mark.parametrize("damage", ["truncate", "flip_data", "flip_footer", "append", "empty"])
def test_every_kind_of_damage_fails_the_check(tmp_path, damage):
    part = store.write_part(tmp_path, worker_rows([f"p{i}" for i in range(50)]), "run1", 0)
    data = bytearray(part.read_bytes())
    rng = random.Random(f"{SEED}-{damage}")
    if damage == "truncate":
        data = data[: rng.randrange(1, len(data))]
    elif damage == "flip_data":
        data[rng.randrange(4, len(data) // 2)] ^= 0x01  # one bit
    elif damage == "flip_footer":
        data[rng.randrange(len(data) - 1024, len(data) - 8)] ^= 0x01
    elif damage == "append":
        data += b"\0"
    else:
        data = bytearray()
    part.write_bytes(bytes(data))
    with pytest.raises(store.CorruptPart, match="content digest"):
        store.verify(part)
    with pytest.raises(store.CorruptPart):
        store.verify(part, part.read_bytes())


def test_a_part_without_digest_is_checked_by_its_footer(tmp_path):
    legacy = tmp_path / "part-20260101T000000000000Z-old-00000.parquet"
    part = store.write_part(tmp_path, worker_rows(["a", "b"]), "run1", 0)
    part.rename(legacy)
    store.verify(legacy)
    assert store.read(tmp_path)["point_id"].to_pylist() == ["a", "b"]
    legacy.write_bytes(legacy.read_bytes()[:-10])
    with pytest.raises(store.CorruptPart, match="footer"):
        store.verify(legacy)


# --------------------------------------------------------------------------- quarantine
def test_every_reader_moves_a_bad_part_aside_and_reads_the_rest(tmp_path):
    for reader in ("existing_ids", "read", "check_parts", "aggregate"):
        path = tmp_path / reader
        parts = three_parts(path)
        bad = parts[1]
        damaged = bad.read_bytes()[:-100]
        bad.write_bytes(damaged)
        if reader == "existing_ids":
            ids, unreadable = store.existing_ids(path)
            assert sorted(ids.to_pylist()) == [f"{x}{i}" for x in "ac" for i in range(4)]
            assert unreadable == [bad]
        elif reader == "read":
            assert store.read(path)["point_id"].to_pylist() == [
                f"{x}{i}" for x in "ac" for i in range(4)
            ]
        elif reader == "check_parts":
            assert store.check_parts(path) == ([parts[0], parts[2]], [bad])
        else:
            result = aggregate.aggregate_pandas(path, metrics=("slowdown_p50",))
            assert result.scan.unreadable == [bad.name]
            assert int(result.stage_summary["points"].sum()) == 8
        assert not bad.exists(), reader
        assert (path / QUARANTINE / bad.name).read_bytes() == damaged, reader
        # pyarrow's own discovery skips the quarantine: the store stays readable as is.
        assert ds.dataset(path, format="parquet").count_rows() == 8


def test_aggregation_never_reads_a_part_that_fails_its_digest(tmp_path):
    """A flipped bit in the data may still decode: only the digest catches it."""
    parts = three_parts(tmp_path)
    data = bytearray(parts[2].read_bytes())
    table = pq.read_table(parts[2])
    # Find a byte whose flip still leaves a readable file (silent corruption).
    rng = random.Random(SEED)
    for offset in rng.sample(range(4, len(data) - 8), 200):
        data[offset] ^= 0x01
        parts[2].write_bytes(bytes(data))
        try:
            readable = pq.read_table(parts[2]).num_rows == table.num_rows
        except Exception:
            readable = False
        if readable:
            break
        data[offset] ^= 0x01
    else:
        pytest.skip("no silent single-bit corruption found in 200 tries")
    result = aggregate.aggregate_pandas(tmp_path, metrics=("slowdown_p50",))
    assert result.scan.unreadable == [parts[2].name]
    assert int(result.stage_summary["points"].sum()) == 8


def test_quarantine_never_overwrites_and_tolerates_a_concurrent_mover(tmp_path):
    part = three_parts(tmp_path)[0]
    (tmp_path / QUARANTINE).mkdir()
    (tmp_path / QUARANTINE / part.name).write_bytes(b"an earlier one")
    moved = store.quarantine(part)
    assert moved == tmp_path / QUARANTINE / f"{part.name}.1"
    assert (tmp_path / QUARANTINE / part.name).read_bytes() == b"an earlier one"
    assert store.quarantine(part) is None  # already gone: another reader moved it


def test_concurrent_readers_quarantine_a_bad_part_once(tmp_path):
    parts = three_parts(tmp_path)
    parts[0].write_bytes(b"PAR1 garbage")
    results = []
    readers = [
        threading.Thread(target=lambda: results.append(store.check_parts(tmp_path)))
        for _ in range(4)
    ]
    for r in readers:
        r.start()
    for r in readers:
        r.join()
    assert all(good == parts[1:] for good, _ in results)
    assert sorted(p.name for p in (tmp_path / QUARANTINE).iterdir()) == [parts[0].name]


# --------------------------------------------------------------------------- temporaries
def litter(path: Path, owner: str, age: float = 0.0) -> Path:
    """A temporary part file as a writer named ``owner`` (``pid@host``) would leave it."""
    tmp = path / f".part-20260101T000000000000Z-run9-00000-{'0' * 16}.parquet.{owner}.tmp"
    tmp.write_bytes(b"half a part")
    if age:
        past = time.time() - age
        os.utime(tmp, (past, past))
    return tmp


def test_temporaries_of_dead_writers_go_live_ones_stay(tmp_path):
    three_parts(tmp_path)
    host = socket.gethostname()
    dead = litter(tmp_path, f"{dead_pid()}@{host}")
    live = litter(tmp_path, f"{os.getpid()}@{host}")
    remote_new = litter(tmp_path, "123@elsewhere")
    remote_old = litter(tmp_path, "123@elsewhere-old", age=2 * store.STALE_TMP_SECONDS)
    assert sorted(store.remove_stale_temporaries(tmp_path)) == sorted([dead, remote_old])
    assert live.exists() and remote_new.exists()
    assert not dead.exists() and not remote_old.exists()
    # A sweep's read does the same on its way, and temporaries are never parts.
    dead = litter(tmp_path, f"{dead_pid()}@{host}")
    ids, unreadable = store.existing_ids(tmp_path)
    assert len(ids) == 12 and unreadable == [] and not dead.exists()


def test_a_temporary_names_its_writer(tmp_path):
    name = store.temporary_name("part-x.parquet")
    assert name.startswith(".part-x.parquet.") and name.endswith(".tmp")
    assert f"{os.getpid()}@{socket.gethostname()}" in name
    assert not store.is_stale_temporary(tmp_path / name, time.time())


# --------------------------------------------------------------------------- failed commits
@pytest.mark.parametrize("where", ["write", "rename"])
def test_a_failed_commit_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, where):
    three_parts(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "write":
        monkeypatch.setattr(os, "fsync", no_space)  # after the bytes went to the temporary
    else:
        monkeypatch.setattr(parts, "_publish", no_space)
    with pytest.raises(store.StoreWriteError) as failed:
        store.write_part(tmp_path, worker_rows(["d0", "d1"]), "run2", 0)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"cannot commit a part file to the store {tmp_path}: ")
    assert "No space left on device" in message and "2 points not stored" in message
    assert isinstance(failed.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary left
    assert store.read(tmp_path).num_rows == 12


def test_part_writer_keeps_counting_only_what_was_committed(tmp_path, monkeypatch):
    writer = store.PartWriter(tmp_path, "run1", part_rows=2, flush_seconds=3600)
    writer.add(worker_rows(["a", "b"]))
    monkeypatch.setattr(
        parts, "_publish", lambda tmp, final: (_ for _ in ()).throw(OSError(28, "full"))
    )
    with pytest.raises(store.StoreWriteError):
        writer.add(worker_rows(["c", "d"]))
    assert writer.rows_written == 2 and len(writer.parts) == 1
    assert store.read(tmp_path)["point_id"].to_pylist() == ["a", "b"]
