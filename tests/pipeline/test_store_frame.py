"""The store's frame (:mod:`pipeline.store.frame`) and its dedup by position
(:mod:`pipeline.store.dedup`): keys, duplicates, scopes, the Dask frame against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from omegaconf import OmegaConf

from asi_slowdown.pipeline.execution.scheduler import scheduler
from asi_slowdown.pipeline.store import lookup, part_files
from asi_slowdown.pipeline.store.dedup import has_key, id_keys, repeated_keys
from asi_slowdown.pipeline.store.frame import Scope, pandas_frame, store_frame

from .report_fixtures import write_store


def threads(workers: int = 2):
    return scheduler(OmegaConf.create({"scheduler": "threads", "num_workers": workers}))


# --------------------------------------------------------------------------- keys
def test_id_keys_match_for_equal_ids_whatever_the_buffer_offset():
    ids = pa.array([f"{i:032x}" for i in (5, 7, 5, 2**100, 7)])
    keys = id_keys(ids)
    assert keys.dtype == np.uint64
    assert keys[0] == keys[2] and keys[1] == keys[4] and len(set(keys.tolist())) == 3
    np.testing.assert_array_equal(id_keys(ids.slice(2)), keys[2:])  # offset into the buffer
    np.testing.assert_array_equal(id_keys(pa.chunked_array([ids[:2], ids[2:]])), keys)


def test_id_keys_fall_back_for_ids_of_other_lengths():
    keys = id_keys(pa.array(["a", "bb", "a", "c" * 40]))
    assert keys[0] == keys[2] and len(set(keys.tolist())) == 3


def test_repeated_keys_and_has_key():
    keys = [np.array([3, 1, 2], np.uint64), np.array([2, 9], np.uint64), np.array([9], np.uint64)]
    repeated = repeated_keys(keys)
    np.testing.assert_array_equal(repeated, [2, 9])
    np.testing.assert_array_equal(
        has_key(np.array([1, 2, 9, 10], np.uint64), repeated), [False, True, True, False]
    )
    assert not has_key(np.array([1], np.uint64), repeated[:0]).any()


# --------------------------------------------------------------------------- the frame
def test_the_dask_frame_equals_the_pandas_reads_and_checks_parts_once(small_store, monkeypatch):
    store, grid = small_store
    columns = ["point_id", "workload", "cpus", "slowdown_p50"]
    with threads():
        frame, scan = store_frame(store, columns)
        fast = frame.compute()
    slow, reference = pandas_frame(store, columns)
    key = ["point_id"]
    pd.testing.assert_frame_equal(
        fast.sort_values(key, ignore_index=True),
        slow.sort_values(key, ignore_index=True),
        check_dtype=False,  # Dask's strings are pyarrow-backed
    )
    assert len(fast) == len(grid) and scan.parts == reference.parts == len(part_files(store))
    assert isinstance(fast["workload"].dtype, pd.CategoricalDtype)
    from asi_slowdown.pipeline.store import frame as frame_module

    checked = frame_module.check_parts(store)
    monkeypatch.setattr(frame_module, "check_parts", lambda s: pytest.fail("checked again"))
    with threads():
        again, _ = store_frame(store, columns, checked=checked)
        assert len(again.compute()) == len(grid)


def test_unknown_columns_are_named(small_store):
    with pytest.raises(ValueError, match="not store columns: nope"):
        store_frame(small_store[0], ["slowdown_p50", "nope"])


def test_duplicates_keep_the_earliest_copy_by_the_store_rule(tmp_path):
    store = tmp_path / "store"
    write_store(store, keep=lambda chunk: chunk < 4, run_id="first")
    write_store(store, keep=lambda chunk: 2 <= chunk < 6, run_id="second")  # chunks 2, 3 twice
    with threads():
        frame, scan = store_frame(store, ["point_id", "run_id", "created_at"])
        rows = frame.compute()
    assert scan.duplicates_dropped == 2 * 12 and scan.rows_in_scope == 8 * 12
    assert rows["point_id"].is_unique and len(rows) == 6 * 12
    # The first run committed its copies earlier: all of them are kept, and the second
    # run contributes only the chunks the first never stored.
    assert (rows["run_id"] == "first").sum() == 4 * 12
    assert (rows["run_id"] == "second").sum() == 2 * 12


def test_scope_is_pushed_down_and_restricts_to_the_grid(small_store):
    store, grid = small_store
    scope = Scope(workloads=("fork_exec",), stages=("rfc_v2", "multi_slot"), equals={"cpus": 4})
    columns = ["workload", "mitigations", "cpus", "slowdown_p50"]
    with threads():
        rows = store_frame(store, columns, scope)[0].compute()
    assert set(rows["workload"]) == {"fork_exec"} and set(rows["cpus"]) == {4}
    assert set(rows["mitigations"]) == {"rfc_v2", "multi_slot"} and len(rows) == 2 * 4
    some = grid.points.column("point_id").slice(0, 5).combine_chunks()
    with threads():
        assert len(store_frame(store, columns, Scope(point_ids=some))[0].compute()) == 5
    assert len(pandas_frame(store, columns, Scope(point_ids=some))[0]) == 5
    assert Scope().expression() is None


def test_lookup_reads_a_few_points_by_id(small_store):
    store, grid = small_store
    ids = grid.points.column("point_id").to_pylist()[:3] + ["not-stored"]
    table = lookup(store, ids, ["slowdown_p50"])
    assert sorted(table.column("point_id").to_pylist()) == sorted(ids[:3])
