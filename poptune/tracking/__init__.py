"""MLflow tracking, optional (``pip install 'poptune[mlflow]'``).

With ``--mlflow-tracking-uri`` a search is one MLflow experiment, named after the poptune
experiment (``--name``), holding:

- a **search run** (tag ``poptune.role=search``): the search's settings as params, its trial
  counts and wall time as metrics once it ends, and after analysis the winner's config
  (params ``winner.*``), its test and final scores, the baselines, and ``report.html``,
  ``metrics.json`` and ``best_config.json`` as artifacts (``runs``);
- one **trial run** per Tune trial, nested under the search run: the trial's config as params and
  ``train_loss``, ``val_mse``, ``val_rmse``, ``val_mae`` with one value per epoch (step = epoch),
  written by :class:`poptune.tracking.callback.TrialRuns` (Ray's MLflowLoggerCallback).

MLflow is imported only in this package, and only when tracking is asked for: ``import
poptune`` and every command without the option work without it.
"""

from poptune.tracking.runs import (
    EXPERIMENT_TAG,
    INSTALL_HINT,
    ROLE_TAG,
    SEARCH_ID_TAG,
    SEARCH_ROLE,
    TRIAL_TAG,
    analysis_metrics,
    log_analysis,
    log_search_end,
    mlflow_available,
    require_mlflow,
    search_run,
)

__all__ = [
    "EXPERIMENT_TAG",
    "INSTALL_HINT",
    "ROLE_TAG",
    "SEARCH_ID_TAG",
    "SEARCH_ROLE",
    "TRIAL_TAG",
    "analysis_metrics",
    "log_analysis",
    "log_search_end",
    "mlflow_available",
    "require_mlflow",
    "search_run",
]
