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

The names live in three modules: ``_gate`` (the Ray they were written for), ``core`` (Ray core)
and ``tune`` (Ray Tune); callers import them from here.
"""

from __future__ import annotations

from poptune.compat.ray_private._gate import INSTALL_TESTED, WRITTEN_FOR, installed_version
from poptune.compat.ray_private.core import (
    can_probe_gcs,
    check_driver_token,
    cluster_config,
    connect_gcs,
    enable_token_auth,
    reset_auth_token_cache,
    single_machine_mode,
)
from poptune.compat.ray_private.tune import (
    FastDefineByRun,
    checkpoint_results_of,
    completed_trials_of,
    forgive_failure,
    optuna_study_of,
    optuna_trials_of,
    saved_optuna_study,
    trial_runs_of,
    trim_finished_trial,
)

__all__ = [
    "INSTALL_TESTED",
    "WRITTEN_FOR",
    "FastDefineByRun",
    "can_probe_gcs",
    "check_driver_token",
    "checkpoint_results_of",
    "cluster_config",
    "completed_trials_of",
    "connect_gcs",
    "enable_token_auth",
    "forgive_failure",
    "installed_version",
    "optuna_study_of",
    "optuna_trials_of",
    "reset_auth_token_cache",
    "saved_optuna_study",
    "single_machine_mode",
    "trial_runs_of",
    "trim_finished_trial",
]
