"""The results store: atomic part files, schema, dedupe on read, unreadable parts (no Ray)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from asi_slowdown.model.costs import ASI_COSTS
from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.model.params import POINT_PARAMS
from asi_slowdown.pipeline import store
from asi_slowdown.pipeline.store import schema
from asi_slowdown.pipeline.sweep.chunks import ROW_SCHEMA


def worker_rows(ids: list[str], value: float = 0.5) -> pa.Table:
    """Rows shaped like a worker's, with every metric set to ``value``."""
    n = len(ids)
    columns = {}
    for field in ROW_SCHEMA:
        if field.name == "point_id":
            columns[field.name] = pa.array(ids)
        elif pa.types.is_string(field.type):
            columns[field.name] = pa.array(["x"] * n)
        elif pa.types.is_boolean(field.type):
            columns[field.name] = pa.array([False] * n)
        elif pa.types.is_integer(field.type):
            columns[field.name] = pa.array([1] * n, field.type)
        else:
            columns[field.name] = pa.array([value] * n)
    return pa.table(columns, schema=ROW_SCHEMA)


def test_schema_names_every_parameter_metric_and_provenance():
    names = schema.STORE_SCHEMA.names
    assert names[0] == "point_id"
    for column in (*POINT_PARAMS, "workload", "cpu", "mitigations", "seed", "samples"):
        assert column in names
    for column in (
        "model_version",
        "git_revision",
        "package_versions",
        "config_hash",
        "created_at",
    ):
        assert column in names
    assert len(names) == len(set(names))
    assert schema.STORE_SCHEMA.metadata[b"asi.store_schema_version"] == b"1"


def test_metric_columns_are_exactly_what_the_model_returns(base_point, round_costs):
    out = evaluate(base_point, {k: np.array([v]) for k, v in round_costs.items()})
    assert set(out) == set(schema.METRIC_COLUMNS)
    assert {f"extra_ns_{c}" for c in ASI_COSTS} <= set(schema.METRIC_COLUMNS)


def test_part_is_committed_atomically_and_readable_with_pyarrow_dataset(tmp_path):
    path = store.write_part(tmp_path, worker_rows(["a", "b"]), "run1", 0)
    assert path.name.startswith("part-") and path.suffix == ".parquet"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    table = ds.dataset(tmp_path).to_table()
    assert table.schema.equals(schema.STORE_SCHEMA, check_metadata=False)
    assert sorted(table["point_id"].to_pylist()) == ["a", "b"]
    assert set(table["run_id"].to_pylist()) == {"run1"}
    assert table["package_versions"][0].as_py().startswith("{")


def test_a_failed_write_leaves_nothing(tmp_path):
    bad = worker_rows(["a"]).drop_columns(["t_asi_mean"])
    with pytest.raises(KeyError):
        store.write_part(tmp_path, bad, "run1", 0)
    assert list(tmp_path.iterdir()) == []


def test_read_keeps_one_row_per_point_the_earliest(tmp_path):
    store.write_part(tmp_path, worker_rows(["a", "b"], value=1.0), "run1", 0)
    store.write_part(tmp_path, worker_rows(["b", "c"], value=2.0), "run2", 0)
    raw = ds.dataset(tmp_path).to_table()
    assert raw.num_rows == 4
    table = store.read(tmp_path)
    assert table["point_id"].to_pylist() == ["a", "b", "c"]
    assert table["t_asi_mean"].to_pylist() == [1.0, 1.0, 2.0]
    assert store.read(tmp_path, columns=["point_id"]).column_names == ["point_id"]


def test_dedupe_breaks_timestamp_ties_by_run_id():
    rows = store.with_provenance(worker_rows(["a", "a"]), "zzz", datetime.now(UTC))
    rows = rows.set_column(
        rows.schema.get_field_index("run_id"), "run_id", pa.array(["zzz", "aaa"])
    )
    rows = rows.set_column(
        rows.schema.get_field_index("t_asi_mean"), "t_asi_mean", pa.array([1.0, 2.0])
    )
    kept = store.dedupe(rows)
    assert kept["run_id"].to_pylist() == ["aaa"] and kept["t_asi_mean"].to_pylist() == [2.0]


def test_unreadable_part_is_reported_and_others_still_count(tmp_path):
    store.write_part(tmp_path, worker_rows(["a"]), "run1", 0)
    broken = store.write_part(tmp_path, worker_rows(["b"]), "run1", 1)
    broken.write_bytes(broken.read_bytes()[:100])  # truncated, as by a full disk
    ids, unreadable = store.existing_ids(tmp_path)
    assert ids.to_pylist() == ["a"]
    assert unreadable == [broken]


def test_part_writer_commits_by_rows_and_on_flush(tmp_path):
    writer = store.PartWriter(tmp_path, "run1", part_rows=3, flush_seconds=3600)
    writer.add(worker_rows(["a", "b"]))
    assert writer.parts == []
    writer.add(worker_rows(["c", "d"]))
    assert len(writer.parts) == 1 and writer.rows_written == 4
    writer.add(worker_rows(["e"]))
    writer.flush()
    assert len(writer.parts) == 2 and writer.rows_written == 5
    assert len(store.read(tmp_path)) == 5


def test_empty_store_reads_as_empty_table(tmp_path):
    assert store.read(tmp_path / "missing").num_rows == 0
    assert len(store.existing_ids(tmp_path)[0]) == 0
