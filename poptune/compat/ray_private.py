"""Ray's private names, reached from here only (see :mod:`poptune.compat`).

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
- the define-by-run suggestion read off the trial (``search/searcher.py``,
  :class:`FastDefineByRun`) → Ray's own capturing proxy;
- the state of Ray's ``OptunaSearch`` and ``MLflowLoggerCallback`` that poptune's subclasses
  extend (:func:`optuna_study_of`, :func:`optuna_trials_of`, :func:`completed_trials_of`,
  :func:`saved_optuna_study`, :func:`trial_runs_of`): no public path exists, so these read the
  attributes on any Ray and, where one is gone, fail with an error naming the fix;
- what Tune keeps in the driver's memory of a finished trial (``search/finished.py``,
  :func:`trim_finished_trial`) → kept as Tune keeps it (the driver grows with the search).

``ray.air.integrations.mlflow`` (``tracking/callback.py``) is public: Ray documents
``MLflowLoggerCallback`` there (``ray.tune.logger.mlflow`` only re-exports it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ray

from poptune.compat import major_minor, off_reason, warn_once

if TYPE_CHECKING:
    import optuna

# The Ray releases (major, minor) whose private code the calls here were written against.
WRITTEN_FOR = ((2, 60),)
# The way back to the tested Ray, for the errors where no public path is left.
INSTALL_TESTED = "pip install -c constraints.txt 'ray[tune]'"


def installed_version() -> tuple[int, int]:
    return major_minor(ray.__version__)


def _written_for() -> str:
    return ", ".join(f"{a}.{b}" for a, b in WRITTEN_FOR)


def _off_reason() -> str | None:
    """Why the private calls are not to be made here, or None where they are."""
    return off_reason("Ray", ray.__version__, WRITTEN_FOR)


def _private_paths(feature: str, fallback: str) -> bool:
    """True when this Ray is one the private calls were written for and they are not turned
    off; otherwise False, after one warning (per feature) saying what ``fallback`` loses."""
    reason = _off_reason()
    if reason is None:
        return True
    warn_once(f"ray: {feature}", f"{reason}; {fallback}")
    return False


def _missing(feature: str, exc: Exception, fallback: str) -> None:
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
    if explicit and _off_reason() is not None:
        return
    if not explicit and not _private_paths("token", _TOKEN_AUTH_FALLBACK):
        return
    try:
        initialize = ray._raylet.Config.initialize
    except AttributeError as exc:
        if not explicit:
            _missing("token", exc, _TOKEN_AUTH_FALLBACK)
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
    if not _private_paths("token cache", fallback):
        return
    try:
        loader = ray._raylet.AuthenticationTokenLoader.instance()
    except AttributeError as exc:
        _missing("token cache", exc, fallback)
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
    if not _private_paths("loopback", fallback):
        yield
        return
    try:
        from ray._private import ray_constants

        saved = ray_constants.ENABLE_RAY_CLUSTER
    except (ImportError, AttributeError) as exc:
        _missing("loopback", exc, fallback)
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
    if not _private_paths("probe", _PROBE_FALLBACK):
        return False
    try:
        _probe_names()
    except ImportError as exc:
        _missing("probe", exc, _PROBE_FALLBACK)
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
    if not _private_paths("cluster config", fallback):
        return None
    try:
        from ray._private import state

        get = state.state.get_cluster_config
    except (ImportError, AttributeError) as exc:
        _missing("cluster config", exc, fallback)
        return None
    return get()


# -- Ray Tune's OptunaSearch ------------------------------------------------------------------


class FastDefineByRun:
    """Mixin, before Ray's ``OptunaSearch`` in a subclass's bases: a define-by-run space's
    suggestion read off the Optuna trial.

    Ray hands the space a proxy that wraps every ``suggest_*`` call to note its value, at the
    cost of an ``inspect.signature`` each (a twentieth of a suggestion); the trial notes them
    itself. The method overridden is Ray's private one: outside the Ray it was written for,
    Ray's own runs (and if Ray no longer has the method, nothing calls this one)."""

    def _suggest_from_define_by_run_func(self, func: Callable, ot_trial: optuna.Trial) -> dict:
        fallback = (
            "each suggestion goes through Ray's capturing proxy (the same configs, about 5% "
            "slower a suggestion)"
        )
        if not _private_paths("suggest", fallback):
            return super()._suggest_from_define_by_run_func(func, ot_trial)  # type: ignore[misc]
        returned = func(ot_trial)
        return {**ot_trial.params, **(returned or {})}


# The state below has no public accessor in Ray: poptune's subclasses extend what Ray's classes
# keep there. So these read the attributes on any Ray, and where one is gone (a later Ray that
# renamed it) fail with an error naming the Ray and the way back, not a bare AttributeError.


def _attribute(obj: object, name: str, owner: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"Ray {ray.__version__}'s {owner} keeps no {name}, which poptune reads (written "
            f"for Ray {_written_for()}); install the tested Ray: {INSTALL_TESTED}"
        ) from None


def optuna_study_of(searcher: object) -> optuna.Study:
    """The Optuna study a Ray ``OptunaSearch`` asks and tells."""
    return _attribute(searcher, "_ot_study", "OptunaSearch")


def optuna_trials_of(searcher: object) -> dict[str, optuna.Trial]:
    """A Ray ``OptunaSearch``'s Optuna trial of each Tune trial id (the searcher's own dict)."""
    return _attribute(searcher, "_ot_trials", "OptunaSearch")


def completed_trials_of(searcher: object) -> set[str]:
    """The Tune trial ids a Ray ``OptunaSearch`` has told the study the outcome of (its own
    set: adding to it is how a subclass records one)."""
    return _attribute(searcher, "_completed_trials", "OptunaSearch")


def saved_optuna_study(state: object) -> Any | None:
    """The study in a Ray ``OptunaSearch``'s saved state (Tune's ``searcher-state-*.pkl``,
    unpickled: the searcher's attributes as a dict), or None for a state of another form."""
    if not isinstance(state, dict):
        return None
    if "_ot_study" not in state:
        raise RuntimeError(
            f"Ray {ray.__version__}'s saved OptunaSearch state holds no _ot_study, which poptune "
            f"reads (written for Ray {_written_for()}); install the tested Ray: {INSTALL_TESTED}"
        )
    return state["_ot_study"]


# -- Ray Tune's MLflowLoggerCallback ----------------------------------------------------------


def trial_runs_of(callback: object) -> dict[Any, str]:
    """A Ray ``MLflowLoggerCallback``'s MLflow run id of each trial (its own dict: what its
    ``log_trial_end`` ends)."""
    return _attribute(callback, "_trial_runs", "MLflowLoggerCallback")


# -- what Tune keeps of a finished trial (search/finished.py) ---------------------------------
# Added for the driver's memory in a long search; independent of the sections above.

_FINISHED_FALLBACK = (
    "Tune keeps each finished trial's per-metric running windows and every checkpoint's result "
    "in the driver's memory (tens of KB a trial: the driver grows with a long search)"
)


def trim_finished_trial(trial: Any, keep_metrics: Collection[str]) -> bool:
    """Let go of what Tune's driver keeps of a trial that has finished and nothing reads again;
    True when it was trimmed. Called from ``on_trial_complete`` (never for an errored trial,
    which ``--retry-errored`` may run on):

    - the running windows (two deques per numeric metric) behind the ``last-5-avg`` and
      ``last-10-avg`` of its metric summaries: those averages stay, and a finished trial reports
      nothing more to average;
    - the summaries (``min``, ``max``, ``avg``, ``last``, ``last-N-avg``) of every metric but
      ``keep_metrics`` (``ExperimentAnalysis.get_best_trial`` reads those of the metric it is
      asked about; its ``last_result`` keeps every metric's last value);
    - the results of its checkpoints but the newest (the one Tune's ``Result.checkpoint`` and a
      restore use). Their files stay until the search ends, which then keeps only the newest;
    - the reference to the auto-filled metrics its actor was asked for when the trial started,
      which Tune reads only for a trial that never reported (its last result stands in for them
      otherwise): held, it keeps the task's return value and bookkeeping in Ray's core worker,
      outside Python's heap, for every trial of the search.

    Tune writes the trial's state again when it stops the trial, just after this call, so the
    experiment state saved after it is trimmed alike. Outside the Ray this was written for
    nothing is trimmed (one warning)."""
    if not _private_paths("finished trials", _FINISHED_FALLBACK):
        return False
    try:
        metadata = trial.run_metadata
        summaries = metadata.metric_analysis
        manager = metadata.checkpoint_manager
        results = manager._checkpoint_results if manager is not None else []
        latest = manager._latest_checkpoint_result if manager is not None else None
        invalidate = metadata.invalidate_cache
        pending_default = trial._default_result_or_future
    except AttributeError as exc:
        _missing("finished trials", exc, _FINISHED_FALLBACK)
        return False
    # New dicts, assigned: the metadata drops its cached JSON on assignment. The summaries'
    # keys are interned (Tune formats "last-5-avg" anew for every metric of every trial).
    metadata.metric_analysis = {
        name: {sys.intern(scope): value for scope, value in summary.items()}
        for name, summary in summaries.items()
        if name in keep_metrics
    }
    # The running windows of the kept metrics stay: Tune would update them if it ever saw
    # another result of the trial (two short deques each).
    metadata.metric_n_steps = {
        name: windows for name, windows in metadata.metric_n_steps.items() if name in keep_metrics
    }
    if manager is not None and len(results) > 1:
        manager._checkpoint_results = [latest] if latest in results else results[-1:]
    if isinstance(pending_default, ray.ObjectRef) and set(metadata.last_result) - {"trial_id"}:
        trial._default_result_or_future = None
    invalidate()
    return True


_FORGIVE_FALLBACK = (
    "a trial failure caused by a full disk counts against the trial's --max-failures"
)


def forgive_failure(trial: Any) -> None:
    """Take one failure off ``trial``'s count (a failure that was no fault of the trial's, as a
    full disk): Tune keeps the count in the trial's private run metadata."""
    if not _private_paths("failure count", _FORGIVE_FALLBACK):
        return
    try:
        metadata = trial.run_metadata
        metadata.num_failures = max(0, metadata.num_failures - 1)
        metadata.invalidate_cache()
    except AttributeError as exc:
        _missing("failure count", exc, _FORGIVE_FALLBACK)


def checkpoint_results_of(trial: Any) -> int:
    """How many checkpoint results Tune keeps in memory for ``trial`` (a measurement for
    benchmarks/_chaos_memory.py; 0 where this Ray keeps them elsewhere)."""
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    return len(getattr(manager, "_checkpoint_results", ()) or ())
