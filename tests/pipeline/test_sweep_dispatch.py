"""The sweep on Ray without starting it: failure messages, settings, the sweeper's exit codes
and SIGINT handling (the Ray session itself: ``test_execution_ray.py``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from ray.exceptions import RayTaskError, WorkerCrashedError

from asi_slowdown.pipeline.configuration.checks import check_execution
from asi_slowdown.pipeline.configuration.compose import compose_config
from asi_slowdown.pipeline.sweep import dispatch
from asi_slowdown.pipeline.sweep.run import SweepResult, interrupted_once
from asi_slowdown.pipeline.sweep.sweeper import GridSweeperImpl
from tests.pipeline.test_execution_ray import interrupt_me


def test_failure_messages_are_one_line():
    cause = ValueError("bad chunk\nsecond line")
    err = RayTaskError("_evaluate", "traceback text", cause)
    assert dispatch.failure_message(err) == "ValueError: bad chunk"
    crashed = WorkerCrashedError()
    assert dispatch.failure_message(crashed).startswith("WorkerCrashedError: ")
    assert "\n" not in dispatch.failure_message(crashed)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sweep.chunk_size=0", "sweep.chunk_size must be an integer >= 1 or null"),
        ("sweep.target_task_seconds=0", "sweep.target_task_seconds must be a number > 0"),
        ("sweep.max_retries=-1", "sweep.max_retries must be an integer >= 0"),
        ("store.part_rows=0", "store.part_rows must be an integer >= 1"),
        ("ray.num_cpus=0", "ray.num_cpus must be an integer >= 1 or null"),
        ("ray.object_store_memory=1000", "ray.object_store_memory must be >= 83886080"),
        ("ray.address=nowhere", "ray.address must be null (embedded Ray), auto, host:port"),
    ],
)
def test_bad_settings_are_named(override, message):
    from asi_slowdown.pipeline.configuration.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_execution(compose_config([override]))


def _sweeper_with(monkeypatch, tmp_path: Path, result: SweepResult) -> GridSweeperImpl:
    import pipeline.sweep.run

    monkeypatch.setattr(pipeline.sweep.run, "run", lambda *a, **k: result)
    sweeper = GridSweeperImpl(params={"cpus": "1,2"})
    config = OmegaConf.create(
        {"hydra": {"job": {"config_name": "config"}, "sweep": {"dir": str(tmp_path)}}}
    )
    sweeper.setup(
        hydra_context=type("Ctx", (), {"config_loader": None})(), task_function=None, config=config
    )
    return sweeper


def test_sweeper_exits_1_when_points_failed_and_returns_the_result_otherwise(monkeypatch, tmp_path):
    ok = SweepResult("r", "s", points=2, profiles=1, new=2, already_in_store=0, done=2)
    assert _sweeper_with(monkeypatch, tmp_path, ok).sweep([]) is ok
    failed = SweepResult(
        "r", "s", points=2, profiles=1, new=2, already_in_store=0, done=1,
        failed=[{"point_ids": ["x"], "error": "ValueError: boom", "profile": 0}],
    )  # fmt: skip
    with pytest.raises(SystemExit) as info:
        _sweeper_with(monkeypatch, tmp_path, failed).sweep([])
    assert info.value.code == 1


def test_the_first_sigint_stops_a_sweep_and_later_ones_cannot_cut_its_stop_short(
    sigint_default,
):
    with pytest.raises(KeyboardInterrupt), interrupted_once():
        interrupt_me()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # until the process exits
    interrupt_me()  # a second Ctrl-C: ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with interrupted_once():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # no interrupt


def test_an_interrupted_sweep_says_how_much_of_it_stays():
    """It said "committed parts stay" whether there were none or thousands."""
    from asi_slowdown.pipeline.sweep.run import SweepInterrupted, interrupted_line

    assert interrupted_line(SweepInterrupted(3, 1234, "outputs/store")) == (
        "asi-sweep: interrupted; 1,234 points in 3 part file(s) committed to outputs/store "
        "stay, rerun to resume"
    )
    assert "before any part was committed" in interrupted_line(SweepInterrupted(0, 0, "s"))
    assert "before any point was computed" in interrupted_line(KeyboardInterrupt())
    assert isinstance(SweepInterrupted(0, 0, "s"), KeyboardInterrupt)  # Ctrl-C's semantics
