"""Token authentication towards a running Ray cluster, settled before ``ray.init``.

Ray 2.60 turns token authentication on for a head started with ``ray start``
on a machine that has a token (``~/.ray/auth_token``, written by any earlier
local ``ray.init``). A driver finds the token on its own only for
``address=auto``; given ``host:port`` or ``ray://host:port`` it connects
without one, and Ray retries for about half a minute, printing a line per
attempt (``InvalidAuthToken``), before it gives up.

:func:`authenticate` asks the cluster first, with one cheap gRPC call (the
GCS for ``host:port``, the client server for ``ray://``): a cluster that
wants a token gets this machine's, as Ray does for ``auto``; one that would
refuse is a one-line :class:`ConfigError` at once, naming what to do.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from asi_slowdown.pipeline.configuration.errors import ConfigError

AUTH_MODE_ENV = "RAY_AUTH_MODE"
"""Ray's switch: ``token`` or ``disabled``; unset, a driver uses a token only for ``auto``."""

PROBE_SECONDS = 5.0
"""How long the probe waits for an answer [s]; a cluster slower than that is left to Ray."""

TOKEN_PLACES = "~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN"
"""Where Ray looks for a token, as a user would set it."""


def probe(address: str, token: str | None = None):
    """The gRPC status code of one call to the cluster at ``address``, None if it answered.

    ``host:port`` asks the GCS for the cluster id; ``ray://host:port`` pings the
    client server. Both are what Ray itself asks first when it connects.
    """
    import grpc

    metadata = [("authorization", f"Bearer {token}")] if token else []
    target = address.removeprefix("ray://")
    with grpc.insecure_channel(target) as channel:
        try:
            if address.startswith("ray://"):
                from ray.core.generated import ray_client_pb2, ray_client_pb2_grpc

                ping = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
                ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                    ping, timeout=PROBE_SECONDS, metadata=metadata
                )
            else:
                from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

                gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    gcs_service_pb2.GetClusterIdRequest(), timeout=PROBE_SECONDS, metadata=metadata
                )
        except grpc.RpcError as exc:
            return exc.code()
    return None


def local_token() -> str | None:
    """This machine's token where Ray looks for one (:data:`TOKEN_PLACES`), or None."""
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    if not loader.has_token(ignore_auth_mode=True):
        return None
    return loader.get_raw_token(ignore_auth_mode=True)


@contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def use_local_token() -> None:
    """Make this process (and what it starts) present :func:`local_token`: Ray's own step for
    ``address=auto`` (it sets ``RAY_AUTH_MODE=token`` and reloads Ray's config), quietly."""
    from ray._private.authentication import authentication_token_setup as setup

    with _quiet(setup.__name__):
        setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def authenticate(address: str) -> None:
    """Settle token authentication with the cluster at ``address`` before ``ray.init``.

    A cluster that answers without a token, or does not answer (``ray.init``
    then says why), needs nothing. One that asks for a token gets this
    machine's, unless ``RAY_AUTH_MODE`` says otherwise; no token, a token the
    cluster refuses, or the mode disabled is one line naming the fix.
    """
    import grpc

    if address == "auto":  # Ray finds the local cluster's token itself
        return
    if probe(address) != grpc.StatusCode.UNAUTHENTICATED:
        return
    where = f"ray.address: the cluster at {address!r} requires token authentication"
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        raise ConfigError(f"{where}, and {AUTH_MODE_ENV}={mode} here: unset it or set it to token")
    token = local_token()
    if token is None:
        raise ConfigError(
            f"{where} and this machine has none: put the head's (`ray get-auth-token` there) "
            f"in {TOKEN_PLACES}"
        )
    if probe(address, token) == grpc.StatusCode.UNAUTHENTICATED:
        raise ConfigError(
            f"{where} and refused this machine's token: put the head's (`ray get-auth-token` "
            f"there) in {TOKEN_PLACES}"
        )
    if mode is None:
        use_local_token()
