"""Ray's private names, reached from here and :mod:`poptune.compat.ray_tune_compat` only (see
:mod:`poptune.compat`).

What uses them, and what each does outside the Ray it was written for (or with
``POPTUNE_PUBLIC_PATHS=1``):

- a private local Ray (``cluster/session.py``): token mode said explicitly with Ray's cached
  config refreshed (:func:`enable_token_auth`), Ray's token cache told of the token file poptune
  writes (:func:`reset_auth_token_cache`), and Ray's single-machine mode for its start, so that
  it listens on 127.0.0.1 only (:func:`single_machine_mode`) → Ray's own defaults;
- the probe of a cluster address before ``ray.init`` (``cluster/_probe_child.py``: Ray's token
  check and GCS client, :func:`check_driver_token`, :func:`connect_gcs`) → no probe, ``ray.init``
  answers;
- the node groups KubeRay reports to Ray (``cluster/autoscale.py``, :func:`cluster_config`) →
  the launcher's file on the head only;
- the define-by-run suggestion read off the trial (``driver/searcher.py``,
  :class:`FastDefineByRun`) → Ray's own capturing proxy;
- a restarted trial's logs kept where the driver's copy is ahead of the storage's
  (``driver/trial_logs.py``, :class:`LiveLogsFirst`) → Tune's own copy from storage, which can
  drop the rows logged since the last sync;
- the state of Ray's ``OptunaSearch`` and ``MLflowLoggerCallback`` that poptune's subclasses
  extend (:func:`optuna_study_of`, :func:`optuna_trials_of`, :func:`completed_trials_of`,
  :func:`saved_optuna_study`, :func:`trial_runs_of`): no public path exists, so these read the
  attributes on any Ray and, where one is gone, fail with an error naming the fix;
- what Tune keeps in the driver's memory of a finished trial (``driver/finished.py``,
  :func:`trim_finished_trial`) → kept as Tune keeps it (the driver grows with the search).

``ray.air.integrations.mlflow`` (``tracking/callback.py``) is public: Ray documents
``MLflowLoggerCallback`` there (``ray.tune.logger.mlflow`` only re-exports it).

This module holds the Ray they were written for and Ray core's names; Ray Tune's private state
is in :mod:`poptune.compat.ray_tune_compat`, behind the same version check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ray

from poptune.compat import major_minor, off_reason, warn_once

# The Ray releases (major, minor) whose private code the calls here were written against.
WRITTEN_FOR = ((2, 60),)
# The way back to the tested Ray, for the errors where no public path is left.
INSTALL_TESTED = "pip install -c constraints.txt 'ray[tune]'"


def installed_version() -> tuple[int, int]:
    return major_minor(ray.__version__)


def written_for() -> str:
    return ", ".join(f"{a}.{b}" for a, b in WRITTEN_FOR)


def off_reason_here() -> str | None:
    """Why the private calls are not to be made here, or None where they are."""
    return off_reason("Ray", ray.__version__, WRITTEN_FOR)


def private_paths(feature: str, fallback: str) -> bool:
    """True when this Ray is one the private calls were written for and they are not turned
    off; otherwise False, after one warning (per feature) saying what ``fallback`` loses."""
    reason = off_reason_here()
    if reason is None:
        return True
    warn_once(f"ray: {feature}", f"{reason}; {fallback}")
    return False


def missing(feature: str, exc: Exception, fallback: str) -> None:
    """The Ray poptune was written for, without a private name poptune uses (a patched build)."""
    warn_once(
        f"ray: {feature}",
        f"Ray {ray.__version__} lacks a private name poptune uses ({exc}); {fallback}",
    )


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
