"""The Dask scheduler (:mod:`pipeline.execution.scheduler`): threads, a distributed
scheduler, Dask-on-Ray on the sweep's Ray session, and Dask's progress in a log."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from asi_slowdown.pipeline.configuration.checks import check_scheduler
from asi_slowdown.pipeline.configuration.errors import ConfigError
from asi_slowdown.pipeline.execution.scheduler import LineProgress, progress, scheduler
from asi_slowdown.pipeline.report import aggregate as agg


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), rtol=1e-12)


@pytest.mark.parametrize("bad", ["thread", "", "http://x:1", None])
def test_a_bad_scheduler_is_one_line(bad):
    with pytest.raises(ConfigError, match=r"^dask\.scheduler must be threads, ray or"):
        check_scheduler(bad)


def test_dask_distributed_local_cluster(small_store):
    """A Dask distributed scheduler by address (in-process cluster: no __main__ guard needed)."""
    from distributed import LocalCluster

    store, grid = small_store
    with LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as cluster:
        conf = OmegaConf.create({"scheduler": cluster.scheduler_address, "num_workers": None})
        with scheduler(conf) as info:
            assert info.name == "distributed" and info.workers == 2
            result = agg.aggregate(store)
    frames_equal(result.cube, agg.aggregate_pandas(store).cube)


def test_an_unreachable_distributed_scheduler_is_one_line(monkeypatch):
    monkeypatch.setattr("asi_slowdown.pipeline.execution.scheduler.CONNECT_TIMEOUT", "1s")
    conf = OmegaConf.create({"scheduler": "tcp://127.0.0.1:9", "num_workers": None})
    with pytest.raises(ConfigError, match=r"^dask\.scheduler: cannot reach 'tcp://127\.0\.0\.1:9'"):
        with scheduler(conf):
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
    with scheduler(dask_conf, ray_conf) as info:
        assert info.name == "ray" and ray.is_initialized()
        result = agg.aggregate(store)
    assert not ray.is_initialized()  # started here, so stopped here
    frames_equal(result.cube, agg.aggregate_pandas(store).cube)


def test_dask_progress_in_a_log_is_plain_lines_without_carriage_returns():
    """Issue 15 item 12 for asi-report: Dask's bar redraws with '\\r'; a log gets lines."""
    import io

    import dask
    import dask.bag as db

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
