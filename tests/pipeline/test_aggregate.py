"""Aggregating the results store on Dask: partial stores, duplicates, scopes, every scheduler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from omegaconf import OmegaConf

from model.evaluate import evaluate
from pipeline.configuration.errors import ConfigError
from pipeline.projection.projection import (
    BEATS_DEFAULT,
    CONFIDENCE_COLUMNS,
    VS_DEFAULT_QUANTILES,
    projections,
)
from pipeline.projection.verdicts import verdict
from pipeline.report import aggregate as agg
from pipeline.store import part_files
from pipeline.sweep.points import point_columns

from .report_fixtures import write_store


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """The small grid, every point stored (168 points in 14 part files)."""
    store = tmp_path_factory.mktemp("store")
    return store, write_store(store)


def threads(workers: int = 2):
    return agg.scheduler(OmegaConf.create({"scheduler": "threads", "num_workers": workers}))


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), rtol=1e-12)


# --------------------------------------------------------------------------- aggregation
def test_aggregate_on_dask_equals_the_pandas_reference_and_the_model(small_store):
    store, grid = small_store
    with threads():
        fast = agg.aggregate(store)
    slow = agg.aggregate_pandas(store)
    frames_equal(fast.cube, slow.cube)
    frames_equal(fast.stage_summary, slow.stage_summary)
    assert fast.cube["points"].sum() == len(grid) == fast.scan.rows_in_scope
    assert (fast.cube["points"] == 1).all()  # one point per cell: nothing else was swept
    # The cube's values are the model's, evaluated directly on the grid's first profile.
    rows = grid.points.filter(pa.compute.equal(grid.points.column("profile"), 0))
    profile = grid.profiles[0]
    direct = evaluate(point_columns(rows, profile), profile.costs())
    cube = fast.cube.set_index(list(agg.CUBE_KEYS))
    for i in range(rows.num_rows):
        key = (
            profile.workload,
            profile.cpu,
            profile.mitigations,
            *(int(rows.column(k)[i].as_py()) for k in ("cpus", "file_size", "ephmap_slots")),
        )
        assert cube.loc[key, "slowdown_p50"] == direct["slowdown_p50"][i]
        assert cube.loc[key, "extra_ns_ephmap_pte"] == direct["extra_ns_ephmap_pte"][i]


def test_stage_summary_counts_and_shares(small_store):
    store, _ = small_store
    with threads(1):
        summary = agg.aggregate(store).stage_summary
    assert len(summary) == 2 * 9 and (summary["points"] == 12).all()  # 9 stages
    for column in ("meets_target_mean", "under_threshold_mean"):
        assert summary[column].between(0, 1).all()
    assert (summary["slowdown_p50_min"] <= summary["slowdown_p50_mean"]).all()
    assert (summary["slowdown_p50_mean"] <= summary["slowdown_p50_max"]).all()
    rfc = summary[summary["mitigations"] == "rfc_v2"]
    assert (rfc["under_threshold_mean"] < 1).all()  # RFC v2 is far over 5 % for fio


def test_the_cube_and_the_projection_carry_the_confidence_and_the_default_baseline(small_store):
    """P(<1 %), P(<5 %) and the slowdown against the kernel's default, as the model computes them."""
    store, grid = small_store
    carried = (*CONFIDENCE_COLUMNS, *VS_DEFAULT_QUANTILES, BEATS_DEFAULT, "t_default_mean")
    assert set(carried) <= set(agg.CUBE_METRICS) <= set(agg.METRIC_COLUMNS)
    with threads():
        out = agg.aggregate(store)
    rows = grid.points.filter(pa.compute.equal(grid.points.column("profile"), 3))
    profile = grid.profiles[3]
    direct = evaluate(point_columns(rows, profile), profile.costs())
    cube = out.cube.set_index(list(agg.CUBE_KEYS))
    for i in range(rows.num_rows):
        key = (
            profile.workload,
            profile.cpu,
            profile.mitigations,
            *(int(rows.column(k)[i].as_py()) for k in ("cpus", "file_size", "ephmap_slots")),
        )
        for column in carried:
            assert cube.loc[key, column] == direct[column][i], column
    stages = sorted(set(out.cube["mitigations"]))
    projection = projections(out.cube, stages)
    for column in carried:
        np.testing.assert_array_equal(
            np.sort(projection[column].to_numpy()), np.sort(out.cube[column].to_numpy())
        )
    assert projection[list(CONFIDENCE_COLUMNS)].stack().between(0, 1).all()
    p05, p50, p95 = (projection[c] for c in VS_DEFAULT_QUANTILES)
    assert (p05 <= p50).all() and (p50 <= p95).all()
    # P(<1 %) <= P(<5 %) for every point: the same samples, a lower line
    assert (projection["p_meets_target"] <= projection["p_under_threshold"]).all()
    # verdicts read the baseline asked for; both slowdowns stay in the rows
    versus = projections(out.cube, stages, "kernel_default")
    assert list(versus["verdict"]) == [verdict(v) for v in versus["slowdown_vs_default_p50"]]
    assert list(projection["verdict"]) == [verdict(v) for v in projection["slowdown_p50"]]
    summary = out.stage_summary
    for column in CONFIDENCE_COLUMNS:
        assert summary[f"{column}_mean"].between(0, 1).all()
        assert (summary[f"{column}_min"] <= summary[f"{column}_mean"]).all()
    assert (summary["slowdown_vs_default_p50_mean"] <= summary["slowdown_vs_default_p50_max"]).all()


def test_a_partial_store_aggregates_what_is_there_and_skips_unreadable_parts(tmp_path):
    """A sweep that failed halfway: some chunks never stored, one part truncated."""
    store = tmp_path / "store"
    grid = write_store(store, keep=lambda chunk: chunk % 3 != 1)
    broken = part_files(store)[0]
    broken.write_bytes(broken.read_bytes()[:100])  # a full disk truncated it
    with threads():
        result = agg.aggregate(store)
    assert result.scan.unreadable == [broken.name]
    stored = int(result.cube["points"].sum())
    assert 0 < stored < len(grid)
    assert stored == agg.aggregate_pandas(store).cube["points"].sum()
    assert stored == result.stage_summary["points"].sum() == result.scan.rows_in_scope


def test_an_empty_store_aggregates_to_empty_tables(tmp_path):
    with threads():
        result = agg.aggregate(tmp_path / "nothing-here")
    assert result.cube.empty and result.stage_summary.empty and result.scan.parts == 0


# --------------------------------------------------------------------------- schedulers
@pytest.mark.parametrize("bad", ["thread", "", "http://x:1", None])
def test_a_bad_scheduler_is_one_line(bad):
    with pytest.raises(ConfigError, match=r"^dask\.scheduler must be threads, ray or"):
        agg.check_scheduler(bad)


def test_dask_distributed_local_cluster(small_store):
    """A Dask distributed scheduler by address (in-process cluster: no __main__ guard needed)."""
    from distributed import LocalCluster

    store, grid = small_store
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as cluster:
        conf = OmegaConf.create({"scheduler": cluster.scheduler_address, "num_workers": None})
        with agg.scheduler(conf) as info:
            assert info.name == "distributed" and info.workers == 2
            result = agg.aggregate(store)
    frames_equal(result.cube, agg.aggregate_pandas(store).cube)


def test_an_unreachable_distributed_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr("pipeline.report.schedulers.CONNECT_TIMEOUT", "1s")
    conf = OmegaConf.create({"scheduler": "tcp://127.0.0.1:9", "num_workers": None})
    with pytest.raises(ConfigError, match=r"^dask\.scheduler: cannot reach 'tcp://127\.0\.0\.1:9'"):
        with agg.scheduler(conf):
            pass


@pytest.mark.slow
def test_dask_on_ray_on_the_sweeps_embedded_ray(small_store):
    import ray

    store, _ = small_store
    dask_conf = OmegaConf.create({"scheduler": "ray", "num_workers": None})
    ray_conf = OmegaConf.create(
        {
            "address": None,
            "num_cpus": 2,
            "object_store_memory": 256 << 20,
            "log_to_driver": False,
            "ship_code": False,
        }
    )
    with agg.scheduler(dask_conf, ray_conf) as info:
        assert info.name == "ray" and ray.is_initialized()
        result = agg.aggregate(store)
    assert not ray.is_initialized()  # started here, so stopped here
    frames_equal(result.cube, agg.aggregate_pandas(store).cube)


def test_dask_progress_in_a_log_is_plain_lines_without_carriage_returns():
    """Issue 15 item 12 for asi-report: Dask's bar redraws with '\\r'; a log gets lines."""
    import io

    import dask
    import dask.bag as db

    from pipeline.report.aggregate import LineProgress, progress

    log = io.StringIO()  # not a terminal
    with progress(True, out=log), dask.config.set(scheduler="sync"):
        db.from_sequence(range(40), npartitions=20).map(lambda x: x + 1).sum().compute()
    assert log.getvalue() == ""  # shorter than the 1 s minimum: silent, like Dask's bar
    with LineProgress(log, minimum=0.0), dask.config.set(scheduler="sync"):
        db.from_sequence(range(40), npartitions=20).map(lambda x: x + 1).sum().compute()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 5 <= len(lines) <= 11 and lines[-1].startswith("asi-report: aggregation ")
    assert "(100 %)" in lines[-1]
