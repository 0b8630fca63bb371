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

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poptune.layout import ANALYSIS_DIR, BEST_CONFIG_FILE, METRICS_FILE, REPORT_HTML_FILE
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

if TYPE_CHECKING:
    from poptune.analysis.settings import AnalyzeSettings
    from poptune.driver.settings import SearchSettings

Log = Callable[[str], None]

__all__ = [
    "EXPERIMENT_TAG",
    "INSTALL_HINT",
    "ROLE_TAG",
    "SEARCH_ID_TAG",
    "SEARCH_ROLE",
    "TRIAL_TAG",
    "analysis_metrics",
    "log_analysis",
    "log_analysis_to_mlflow",
    "log_search_end",
    "mlflow_available",
    "require_mlflow",
    "search_run",
    "tracking_callbacks",
]


def tracking_callbacks(settings: SearchSettings) -> list:
    """Tune callbacks for a new search (a resumed one brings its own, saved with it)."""
    if not settings.mlflow_tracking_uri or settings.resume:
        return []
    from poptune.tracking.callback import TrialRuns

    return [
        TrialRuns(settings.mlflow_tracking_uri, experiment_name=settings.name,
                  settings=settings.to_dict())
    ]  # fmt: skip


def log_analysis_to_mlflow(
    meta: dict[str, Any], metrics: dict, folder: Path, settings: AnalyzeSettings, log: Log
) -> None:
    """The analysis, logged to the search's MLflow run if the search was tracked (a note, and
    nothing logged, where MLflow is not installed here)."""
    tracking_uri = meta["settings"].get("mlflow_tracking_uri")
    if not tracking_uri:
        return
    if not mlflow_available():
        log(
            f"note: the search logged to MLflow at {tracking_uri}, but MLflow is not installed "
            f"here, so this analysis is not logged there ({INSTALL_HINT})"
        )
        return
    out = Path(settings.out) if settings.out else folder / ANALYSIS_DIR
    files = [out / REPORT_HTML_FILE, out / METRICS_FILE, folder / BEST_CONFIG_FILE]
    log_analysis(tracking_uri, meta["settings"]["name"], metrics, files, log=log)
