"""Ray settings, failure messages, the sweeper's exit codes and SIGINT handling, without starting Ray."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from ray.exceptions import RayTaskError, WorkerCrashedError

from pipeline.configuration.checks import check_execution
from pipeline.configuration.compose import compose_config
from pipeline.sweep import raybackend
from pipeline.sweep.run import SweepResult, interrupted_once
from pipeline.sweep.sweeper import GridSweeperImpl


def ray_conf(**kw):
    base = {
        "address": None,
        "num_cpus": None,
        "object_store_memory": None,
        "log_to_driver": False,
        "ship_code": None,
    }
    return OmegaConf.create({**base, **kw})


def test_embedded_ray_is_quiet_dashboardless_and_sized_for_the_machine():
    kwargs = raybackend.init_kwargs(ray_conf(num_cpus=3))
    assert kwargs["address"] == "local" and kwargs["num_cpus"] == 3
    assert kwargs["include_dashboard"] is False and kwargs["log_to_driver"] is False
    assert 256 << 20 <= kwargs["object_store_memory"] <= 2 << 30
    assert raybackend.object_store_bytes(8 << 30) == int(0.1 * (8 << 30))  # 10 % of RAM
    assert raybackend.object_store_bytes(1 << 30) == 256 << 20
    assert raybackend.object_store_bytes(1 << 40) == 2 << 30


@pytest.mark.parametrize("address", ["auto", "10.0.0.1:6379", "ray://head:10001"])
def test_connecting_passes_no_resources(address):
    kwargs = raybackend.init_kwargs(
        ray_conf(address=address, num_cpus=8, object_store_memory=1 << 30)
    )
    assert kwargs["address"] == address
    assert not {"num_cpus", "object_store_memory", "include_dashboard"} & set(kwargs)
    assert ("runtime_env" in kwargs) == address.startswith("ray://")


def test_the_code_shipped_to_a_ray_client_is_paths_it_can_copy():
    """A ``ray://`` client deep-copies its runtime environment (Ray 2.60's uv hook): module
    objects there failed with "cannot pickle 'module' object"."""
    import copy

    import model
    import pipeline

    kwargs = raybackend.init_kwargs(ray_conf(address="ray://head:10001"))
    shipped = kwargs["runtime_env"]["py_modules"]
    assert shipped == [str(Path(model.__file__).parent), str(Path(pipeline.__file__).parent)]
    assert copy.deepcopy(kwargs["runtime_env"]) == kwargs["runtime_env"]


@pytest.mark.parametrize(
    ("answers", "mode", "token", "message"),
    [
        ([None], None, None, None),  # an open cluster: nothing to settle
        (["UNAVAILABLE"], None, None, None),  # nobody there: ray.init says so
        (["UNAUTHENTICATED", None], None, "t", "use"),  # the token works: used
        (["UNAUTHENTICATED", None], "token", "t", None),  # already in token mode
        (["UNAUTHENTICATED"], None, None, "this machine has none"),
        (["UNAUTHENTICATED", "UNAUTHENTICATED"], None, "t", "refused this machine's token"),
        (["UNAUTHENTICATED"], "disabled", "t", "and RAY_AUTH_MODE=disabled here: unset it"),
    ],
)
def test_a_cluster_asking_for_a_token_gets_this_machines_or_one_line(
    monkeypatch, answers, mode, token, message
):
    import grpc

    from pipeline.configuration.errors import ConfigError
    from pipeline.sweep import rayauth

    asked, used = [], []
    replies = iter([a and getattr(grpc.StatusCode, a) for a in answers])
    monkeypatch.setattr(rayauth, "probe", lambda a, t=None: asked.append(t) or next(replies))
    monkeypatch.setattr(rayauth, "local_token", lambda: token)
    monkeypatch.setattr(rayauth, "use_local_token", lambda: used.append(True))
    if mode is None:
        monkeypatch.delenv(rayauth.AUTH_MODE_ENV, raising=False)
    else:
        monkeypatch.setenv(rayauth.AUTH_MODE_ENV, mode)
    if message in (None, "use"):
        rayauth.authenticate("10.0.0.1:6379")
        assert used == ([True] if message == "use" else [])
    else:
        with pytest.raises(ConfigError, match=message) as info:
            rayauth.authenticate("ray://head:10001")
        assert str(info.value).startswith("ray.address: the cluster at 'ray://head:10001' ")
        assert "\n" not in str(info.value) and not used
    assert len(asked) == len(answers)
    rayauth.authenticate("auto")  # Ray's own: never probed
    assert len(asked) == len(answers)


def test_failure_messages_are_one_line():
    cause = ValueError("bad chunk\nsecond line")
    err = RayTaskError("_evaluate", "traceback text", cause)
    assert raybackend.failure_message(err) == "ValueError: bad chunk"
    crashed = WorkerCrashedError()
    assert raybackend.failure_message(crashed).startswith("WorkerCrashedError: ")
    assert "\n" not in raybackend.failure_message(crashed)


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
    from pipeline.configuration.errors import ConfigError

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


def test_a_ray_client_retries_a_head_that_is_not_ready_yet(monkeypatch):
    calls = []

    def init(**kwargs):
        calls.append(kwargs["address"])
        if len(calls) < 3:
            raise ConnectionError("Initialization failure from server:\nTraceback ...")

    monkeypatch.setattr(raybackend.ray, "init", init)
    monkeypatch.setattr(raybackend.time, "sleep", lambda s: None)
    raybackend._init({"address": "ray://head:10001"})
    assert calls == ["ray://head:10001"] * 3
    calls.clear()
    with pytest.raises(ConnectionError):  # not a client address: no retry
        raybackend._init({"address": "10.0.0.1:6379"})
    assert len(calls) == 1


@pytest.fixture
def sigint_default():
    """SIGINT at Python's default (raises KeyboardInterrupt), whatever the test process had
    (a run from a script's background job inherits it ignored), and restored afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt_me() -> None:
    """Send this process SIGINT and give Python the moment it needs to run the handler."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)


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
    from pipeline.sweep.run import SweepInterrupted, interrupted_line

    assert interrupted_line(SweepInterrupted(3, 1234, "outputs/store")) == (
        "asi-sweep: interrupted; 1,234 points in 3 part file(s) committed to outputs/store "
        "stay, rerun to resume"
    )
    assert "before any part was committed" in interrupted_line(SweepInterrupted(0, 0, "s"))
    assert "before any point was computed" in interrupted_line(KeyboardInterrupt())
    assert isinstance(SweepInterrupted(0, 0, "s"), KeyboardInterrupt)  # Ctrl-C's semantics


def test_ray_shutting_down_ignores_sigint_and_restores_it(sigint_default):
    with raybackend.sigint_ignored():
        interrupt_me()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
