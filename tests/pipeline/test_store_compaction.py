"""One row per point by construction: compaction, the digest cache, checked plain reads."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.report import aggregate
from asi_slowdown.pipeline.store import compaction, frame, parts, readers
from asi_slowdown.pipeline.store.frame import Scope
from tests.pipeline.test_store import worker_rows


def commit(path, ids, run_id, seq, when):
    rows = store.with_provenance(worker_rows(ids), run_id, when)
    data = store.encode_part(rows)
    part = path / store.part_name(run_id, seq, when, store.content_digest(data))
    path.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data.to_pybytes())
    return part


def age(path, seconds=60):
    """Make every part old enough for its verification to be cached (not racily new)."""
    for part in store.part_files(path):
        stamp = part.stat().st_mtime - seconds
        os.utime(part, (stamp, stamp))


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def overlapping(tmp_path):
    """Two runs that both stored b0-b3 (the later one also c0-c3)."""
    first = commit(tmp_path, [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)], "r1", 0, T0)
    later = T0 + timedelta(hours=1)
    second = commit(
        tmp_path, [f"b{i}" for i in range(4)] + [f"c{i}" for i in range(4)], "r2", 0, later
    )
    return tmp_path, first, second


def on_disk(path):
    return ds.dataset(path, format="parquet").to_table(columns=["point_id", "run_id"])


def test_compaction_leaves_one_row_per_point_and_keeps_the_winner(overlapping):
    path, first, second = overlapping
    assert on_disk(path).num_rows == 16
    assert store.compact(path) == 4
    rows = on_disk(path).to_pandas().set_index("point_id").sort_index()
    assert len(rows) == 12 and rows.index.is_unique
    assert set(rows.loc[[f"b{i}" for i in range(4)], "run_id"]) == {"r1"}  # earliest commit
    assert first.exists() and not second.exists()  # only the part holding losers is rewritten
    assert store.read(path).num_rows == 12
    assert readers.is_unique(path, store.part_files(path))


def test_compaction_rewrites_rows_unchanged(overlapping):
    path, _, second = overlapping
    before = ds.dataset([str(second)], format="parquet").to_table()
    store.compact(path)
    after = store.read(path).to_pandas().set_index("point_id")
    for row in before.to_pylist():
        if row["point_id"].startswith("c"):
            stored = after.loc[row["point_id"]]
            assert stored["created_at"] == row["created_at"] and stored["run_id"] == "r2"
            assert stored["slowdown_p50"] == row["slowdown_p50"]


def test_a_compacted_store_is_not_read_again(overlapping, monkeypatch):
    path, *_ = overlapping
    store.compact(path)

    def must_not_read(*args, **kwargs):
        raise AssertionError("read data of a store the index says is compacted")

    monkeypatch.setattr(compaction, "read_ids", must_not_read)
    assert store.compact(path) == 0


@pytest.mark.parametrize("moment", ["after_publish", "before_publish"])
def test_a_crash_during_compaction_loses_no_point(overlapping, monkeypatch, moment):
    path, *_ = overlapping

    class Crash(BaseException):
        pass

    if moment == "after_publish":  # the new part is committed, the old one still there
        original = compaction.Path.unlink

        def crash(self, *args, **kwargs):
            if self.name.startswith("part-"):
                raise Crash
            return original(self, *args, **kwargs)

        monkeypatch.setattr(compaction.Path, "unlink", crash)
    else:
        # compaction commits through commit_bytes, which publishes with parts._publish
        monkeypatch.setattr(parts, "_publish", lambda tmp, final: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        store.compact(path)
    monkeypatch.undo()
    ids = store.read(path)["point_id"].to_pylist()
    assert ids == sorted({f"{x}{i}" for x in "abc" for i in range(4)})  # every point, once
    assert not readers.is_unique(path, store.part_files(path))  # so readers deduplicate
    assert not list(path.glob(".part-*.tmp")) or moment == "before_publish"
    store.compact(path)
    assert on_disk(path).num_rows == 12


def test_verified_parts_are_not_hashed_again_until_they_change(overlapping, monkeypatch):
    path, first, _ = overlapping
    age(path)
    store.check_parts(path)
    hashed = []
    real = readers.verify
    monkeypatch.setattr(
        readers, "verify", lambda part, data=None: hashed.append(part) or real(part)
    )
    assert len(store.check_parts(path)[0]) == 2 and hashed == []
    assert store.existing_ids(path)[0].to_pylist() and hashed == []
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size; the write moves the mtime
    first.write_bytes(bytes(data))
    good, bad = store.check_parts(path)
    assert hashed == [first] and bad == [first] and len(good) == 1


def test_a_racily_new_part_is_hashed_on_every_read(tmp_path, monkeypatch):
    part = commit(tmp_path, ["a0"], "r1", 0, T0)  # just written: mtime is now
    store.check_parts(tmp_path)
    assert part.name not in store.load_index(tmp_path)["verified"]
    hashed = []
    real = readers.verify
    monkeypatch.setattr(readers, "verify", lambda p, data=None: hashed.append(p) or real(p))
    store.check_parts(tmp_path)
    assert hashed == [part]


def test_a_damaged_or_missing_index_costs_nothing_but_time(overlapping):
    path, *_ = overlapping
    store.compact(path)
    (path / store.INDEX).write_text("{not json")
    assert store.read(path).num_rows == 12
    (path / store.INDEX).unlink()
    assert store.read(path).num_rows == 12


def test_empty_store_reads_only_the_asked_columns(tmp_path):
    assert store.read(tmp_path / "none", columns=["point_id", "cpus"]).column_names == [
        "point_id",
        "cpus",
    ]
    assert store.read(tmp_path / "none").num_columns == len(store.read(tmp_path).schema)


def test_aggregation_of_a_compacted_store_is_a_plain_read(overlapping, monkeypatch):
    path, *_ = overlapping
    before = aggregate.aggregate(path, metrics=("slowdown_p50",))  # deduplicates on the way
    store.compact(path)
    monkeypatch.setattr(frame, "survey_part", lambda *a: pytest.fail("dedup pass ran"))
    after = aggregate.aggregate(path, metrics=("slowdown_p50",))
    assert int(after.cube["points"].sum()) == int(before.cube["points"].sum()) == 12
    assert after.scan.rows_in_scope == 12 and after.scan.plain and not before.scan.plain
    cols = ["workload", "cpu", "mitigations", "slowdown_p50"]
    np.testing.assert_allclose(after.cube[cols[-1]], before.cube[cols[-1]])
    some = pa.array(["a0", "c3"])
    scoped = aggregate.aggregate(path, Scope(point_ids=some), metrics=("slowdown_p50",))
    assert int(scoped.cube["points"].sum()) == 2


def test_a_sweep_compacts_what_a_concurrent_sweep_duplicated(overlapping):
    """What the end of every sweep runs (``pipeline.sweep.run.execute``)."""
    path, *_ = overlapping
    assert parts.part_files(path) and store.compact(path) == 4 and store.compact(path) == 0
