"""Ray core's private names: a private local Ray's start, the probe of a cluster address,
the cluster config an autoscaler reports (see :mod:`poptune.compat.ray_private`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ray

from poptune.compat.ray_private._gate import missing, off_reason_here, private_paths

# -- a private local Ray ----------------------------------------------------------------------

_TOKEN_AUTH_FALLBACK = (
    "poptune leaves token authentication of its private local Ray to Ray's own default "
    "(Ray 2.60 turns it on, with a warning of its own)"
)


def enable_token_auth() -> None:
    """Token authentication on for the private local Ray this process is about to start
    (unless ``RAY_AUTH_MODE`` already says otherwise).

    Ray reads its config once, at import: setting ``RAY_AUTH_MODE`` later without a refresh
    leaves this driver in "disabled" mode while the GCS it starts reads "token", and every
    connection is rejected. So where the refresh (private) is not available, the variable is
    not set either, and Ray's ``ray.init`` decides (2.60's turns token mode on itself)."""
    explicit = "RAY_AUTH_MODE" in os.environ  # read at import: nothing to refresh, or lose
    if explicit and off_reason_here() is not None:
        return
    if not explicit and not private_paths("token", _TOKEN_AUTH_FALLBACK):
        return
    try:
        initialize = ray._raylet.Config.initialize
    except AttributeError as exc:
        if not explicit:
            missing("token", exc, _TOKEN_AUTH_FALLBACK)
        return
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    initialize("")


def reset_auth_token_cache() -> None:
    """Make Ray's token loader read the token file again (it caches what it found, and must see
    the file poptune just wrote, not "none"). Without the private call, nothing is refreshed: a
    Ray that had looked for a token before may generate one of its own."""
    fallback = (
        "Ray's token cache is not refreshed after poptune writes the token file; should Ray "
        "have looked for a token already, it generates one of its own"
    )
    if not private_paths("token cache", fallback):
        return
    try:
        loader = ray._raylet.AuthenticationTokenLoader.instance()
    except AttributeError as exc:
        missing("token cache", exc, fallback)
        return
    loader.reset_cache()


@contextmanager
def single_machine_mode() -> Iterator[None]:
    """Ray's single-machine mode, for the start of a private local Ray within this block.

    Ray's servers listen on 127.0.0.1 only when the node address is 127.0.0.1, and on Linux
    ``ray.init`` replaces a loopback node address with the machine's own unless Ray runs in its
    single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read once at import, so the
    environment cannot switch it now: only the private constant can). Without it, the private
    Ray starts as Ray would start it: token authentication still guards it, on every interface.
    """
    fallback = (
        "a private local Ray may listen on this machine's network addresses, not on 127.0.0.1 "
        "only (its token authentication still guards it)"
    )
    if not private_paths("loopback", fallback):
        yield
        return
    try:
        from ray._private import ray_constants

        saved = ray_constants.ENABLE_RAY_CLUSTER
    except (ImportError, AttributeError) as exc:
        missing("loopback", exc, fallback)
        yield
        return
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


# -- the probe of a cluster address -----------------------------------------------------------

_PROBE_FALLBACK = (
    "a cluster address is not probed before joining: ray.init itself reports a wrong port or "
    "token, after its own retries (tens of seconds)"
)


def _probe_names() -> tuple[Callable[..., None], Callable[..., Any]]:
    from ray._private.authentication.authentication_token_setup import (
        ensure_token_if_auth_enabled,
    )
    from ray._raylet import GcsClient

    return ensure_token_if_auth_enabled, GcsClient


def can_probe_gcs() -> bool:
    """True when the probe's child process can ask a GCS with Ray's own calls; otherwise False
    (one warning says what is lost), and the address goes straight to ``ray.init``."""
    if not private_paths("probe", _PROBE_FALLBACK):
        return False
    try:
        _probe_names()
    except ImportError as exc:
        missing("probe", exc, _PROBE_FALLBACK)
        return False
    return True


def check_driver_token() -> None:
    """Raise ``ray.exceptions.AuthenticationError`` if token mode is on and this process has no
    token (where ``ray.init`` would abort the process from C++); never creates one."""
    ensure_token, _ = _probe_names()
    ensure_token(None, create_token_if_missing=False)


def connect_gcs(address: str) -> None:
    """Connect to the GCS at ``address`` (HOST:PORT) as ``ray.init`` would, raising what Ray
    raises: ``AuthenticationError`` for a rejected token, an ``RpcError`` for a silent port."""
    _, gcs_client = _probe_names()
    gcs_client(address=address, cluster_id=None)


# -- the joined cluster -----------------------------------------------------------------------


def cluster_config() -> Any | None:
    """The cluster config an autoscaler reported to Ray (``autoscaler_pb2.ClusterConfig``;
    KubeRay reports one), or None. Raises what Ray raises without a GCS connection.

    Ray has no public call for it: elsewhere than the Ray it was written for this is None (one
    warning), and the launcher's file on the head is all that says how a cluster grows."""
    fallback = (
        "the node groups an autoscaler reports to Ray (KubeRay) are not read; only the "
        "launcher's ~/ray_bootstrap_config.yaml on the head says how the cluster may grow"
    )
    if not private_paths("cluster config", fallback):
        return None
    try:
        from ray._private import state

        get = state.state.get_cluster_config
    except (ImportError, AttributeError) as exc:
        missing("cluster config", exc, fallback)
        return None
    return get()
