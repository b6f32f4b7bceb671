"""Aggregating the results store on Dask: partial stores, duplicates, scopes, every scheduler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from omegaconf import OmegaConf

from asi_slowdown.model.evaluate import evaluate
from asi_slowdown.pipeline.execution.scheduler import scheduler
from asi_slowdown.pipeline.projection.projection import (
    BEATS_DEFAULT,
    CONFIDENCE_COLUMNS,
    VS_DEFAULT_QUANTILES,
    projections,
)
from asi_slowdown.pipeline.projection.verdicts import verdict
from asi_slowdown.pipeline.report import aggregate as agg
from asi_slowdown.pipeline.store import part_files
from asi_slowdown.pipeline.sweep.points import point_columns

from .report_fixtures import SMALL_GRID, write_store


def threads(workers: int = 2):
    return scheduler(OmegaConf.create({"scheduler": "threads", "num_workers": workers}))


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), rtol=1e-12)


# --------------------------------------------------------------------------- aggregation
def test_the_cube_is_the_same_gathered_or_reduced_on_dask(small_store, tmp_path):
    """Both ways of building the cube give the pandas reference's: one point per cell (the
    small grid), and two per cell (the same grid swept at two seeds, a whole store's case,
    which a default scope reduces on Dask)."""
    store, _ = small_store
    seeds = tmp_path / "seeds"
    grid = write_store(seeds, (*SMALL_GRID, "seed=1,2"), chunk_rows=20)
    assert len({p.seed for p in grid.profiles}) == 2
    assert not agg.gathers_cells(agg.Scope()) and agg.gathers_cells(agg.Scope(seed=1, samples=64))
    for path, per_cell in ((store, 1), (seeds, 2)):
        slow = agg.aggregate_pandas(path)
        assert (slow.cube["points"] == per_cell).all()
        with threads():
            for gather in (True, False, None):
                fast = agg.aggregate(path, gather=gather)
                frames_equal(fast.cube, slow.cube)
                frames_equal(fast.stage_summary, slow.stage_summary)


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
