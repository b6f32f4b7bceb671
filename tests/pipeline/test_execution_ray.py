"""The Ray session (:mod:`pipeline.execution.raysession`, :mod:`pipeline.execution.rayauth`):
settings passed to Ray, tokens, retries, SIGINT while stopping; without starting Ray."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from asi_slowdown.pipeline.execution import raysession


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
    kwargs = raysession.init_kwargs(ray_conf(num_cpus=3))
    assert kwargs["address"] == "local" and kwargs["num_cpus"] == 3
    assert kwargs["include_dashboard"] is False and kwargs["log_to_driver"] is False
    assert 256 << 20 <= kwargs["object_store_memory"] <= 2 << 30
    assert raysession.object_store_bytes(8 << 30) == int(0.1 * (8 << 30))  # 10 % of RAM
    assert raysession.object_store_bytes(1 << 30) == 256 << 20
    assert raysession.object_store_bytes(1 << 40) == 2 << 30


@pytest.mark.parametrize("address", ["auto", "10.0.0.1:6379", "ray://head:10001"])
def test_connecting_passes_no_resources(address):
    kwargs = raysession.init_kwargs(
        ray_conf(address=address, num_cpus=8, object_store_memory=1 << 30)
    )
    assert kwargs["address"] == address
    assert not {"num_cpus", "object_store_memory", "include_dashboard"} & set(kwargs)
    assert ("runtime_env" in kwargs) == address.startswith("ray://")


def test_the_code_shipped_to_a_ray_client_is_paths_it_can_copy():
    """A ``ray://`` client deep-copies its runtime environment (Ray 2.60's uv hook): module
    objects there failed with "cannot pickle 'module' object"."""
    import copy

    from asi_slowdown import model, pipeline

    kwargs = raysession.init_kwargs(ray_conf(address="ray://head:10001"))
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

    from asi_slowdown.pipeline.configuration.errors import ConfigError
    from asi_slowdown.pipeline.execution import rayauth

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


def test_a_ray_client_retries_a_head_that_is_not_ready_yet(monkeypatch):
    calls = []

    def init(**kwargs):
        calls.append(kwargs["address"])
        if len(calls) < 3:
            raise ConnectionError("Initialization failure from server:\nTraceback ...")

    monkeypatch.setattr(raysession.ray, "init", init)
    monkeypatch.setattr(raysession.time, "sleep", lambda s: None)
    raysession._init({"address": "ray://head:10001"})
    assert calls == ["ray://head:10001"] * 3
    calls.clear()
    with pytest.raises(ConnectionError):  # not a client address: no retry
        raysession._init({"address": "10.0.0.1:6379"})
    assert len(calls) == 1


def interrupt_me() -> None:
    """Send this process SIGINT and give Python the moment it needs to run the handler."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)


def test_ray_shutting_down_ignores_sigint_and_restores_it(sigint_default):
    with raysession.sigint_ignored():
        interrupt_me()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
