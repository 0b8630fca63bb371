"""MLflow access: the search run (found or created by tag) and what is logged to it.

MLflow is imported inside the functions, never at module level: ``import poptune.tracking``
costs nothing where MLflow is not installed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from poptune.errors import UsageError

INSTALL_HINT = "pip install 'poptune[mlflow]'"
ROLE_TAG = "poptune.role"  # "search" on the run that holds the search and its analysis
EXPERIMENT_TAG = "poptune.experiment"  # the poptune experiment name, on every run
TRIAL_TAG = "poptune.trial_id"  # Tune's trial id, on each trial run
SEARCH_ID_TAG = "poptune.search_id"  # one search's own id: a --force search starts a new run
SEARCH_ROLE = "search"
# The search settings worth a param on the search run (the rest are where and how to run it).
_SEARCH_PARAMS = (
    "num_samples", "max_epochs", "scheduler", "sampler", "grace_period", "seed", "dedupe",
    "time_budget", "max_concurrent", "cpus_per_trial", "gpus_per_trial",
)  # fmt: skip


def require_mlflow(tracking_uri: str) -> None:
    """Refuse tracking at once, before any slow work, when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise UsageError(
            f"--mlflow-tracking-uri {tracking_uri}: MLflow is not installed; {INSTALL_HINT}"
        ) from None


def mlflow_available() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def allow_file_store(tracking_uri: str) -> None:
    """MLflow 3 keeps its file store (a folder of runs) only on request: asking poptune for a
    file: URI is that request, so say so to MLflow (a database URI such as sqlite:///mlflow.db
    needs nothing)."""
    if tracking_uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def client(tracking_uri: str):
    """An ``MlflowClient`` for ``tracking_uri``."""
    from mlflow.tracking import MlflowClient

    allow_file_store(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def experiment_id(mlflow_client, name: str) -> str:
    """The id of the MLflow experiment ``name``, created if it does not exist."""
    found = mlflow_client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow_client.create_experiment(name)


def search_run(
    tracking_uri: str, name: str, *, search_id: str | None = None, settings: Mapping[str, Any]
) -> str:
    """The id of the search run of experiment ``name``: the one tagged ``search_id`` (created
    if there is none), or without ``search_id`` the latest search run (created if none)."""
    mlflow_client = client(tracking_uri)
    exp_id = experiment_id(mlflow_client, name)
    wanted = f"tags.`{ROLE_TAG}` = '{SEARCH_ROLE}'"
    if search_id is not None:
        wanted += f" and tags.`{SEARCH_ID_TAG}` = '{search_id}'"
    found = mlflow_client.search_runs(
        [exp_id], filter_string=wanted, order_by=["attributes.start_time DESC"], max_results=1
    )
    if found:
        return found[0].info.run_id
    tags = {ROLE_TAG: SEARCH_ROLE, EXPERIMENT_TAG: name, SEARCH_ID_TAG: search_id or ""}
    run = mlflow_client.create_run(exp_id, run_name=name, tags=tags)
    params = {k: settings.get(k) for k in _SEARCH_PARAMS if settings.get(k) is not None}
    data = settings.get("data") or {}
    if data:
        params["data"] = data.get("path") or f"synthetic:{data.get('synthetic_rows') or 'default'}"
    _log(mlflow_client, run.info.run_id, params=params)
    return run.info.run_id


def log_search_end(tracking_uri: str, name: str, counts: Mapping[str, float]) -> None:
    """The search's trial counts and wall time; the run ends unless trials are left to resume."""
    run_id = search_run(tracking_uri, name, settings={})
    mlflow_client = client(tracking_uri)
    _log(mlflow_client, run_id, metrics={f"search.{k}": v for k, v in counts.items()})
    if not counts.get("unfinished"):
        mlflow_client.set_terminated(run_id, status="FINISHED")


def log_analysis(
    tracking_uri: str,
    name: str,
    metrics: Mapping[str, Any],
    files: list[Path],
    *,
    log: Callable[[str], None] = print,
) -> str:
    """Log an analysis into the search run of experiment ``name``; return the run id."""
    run_id = search_run(tracking_uri, name, settings={})
    mlflow_client = client(tracking_uri)
    winner = {f"winner.{k}": v for k, v in (metrics.get("best_config") or {}).items()}
    try:
        _log(mlflow_client, run_id, params=winner)
    except Exception as exc:  # MLflow params are write-once: a re-analysis chose another winner
        if "param" not in str(exc).lower():
            raise
        for key, value in winner.items():  # tags may change; the latest analysis shows
            mlflow_client.set_tag(run_id, key, str(value))
    _log(mlflow_client, run_id, metrics=analysis_metrics(metrics))
    for path in files:
        if path.is_file():
            mlflow_client.log_artifact(run_id, str(path))
    mlflow_client.set_terminated(run_id, status="FINISHED")
    log(f"logged the analysis to MLflow run {run_id} of experiment {name!r} at {tracking_uri}")
    return run_id


def analysis_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of metrics.json an MLflow run shows: test, final, val and the baselines."""
    flat: dict[str, float] = {}
    test = metrics.get("test") or {}
    for key in ("rmse", "mae", "rmse_std", "mae_std", "n_seeds"):
        flat[f"test.{key}"] = test.get(key)
    lo, hi = (test.get("rmse_ci95") or (None, None))[:2]
    flat["test.rmse_ci95_low"], flat["test.rmse_ci95_high"] = lo, hi
    for key in ("rmse", "mae"):
        flat[f"final.{key}"] = (metrics.get("final") or {}).get(key)
    for key in ("mse", "mse_retrained"):
        flat[f"val.{key}"] = (metrics.get("val") or {}).get(key)
    for baseline, scores in (metrics.get("baselines") or {}).items():
        for key, value in scores.items():
            flat[f"baselines.{baseline}.{key}"] = value
    return {k: float(v) for k, v in flat.items() if _finite(v)}


def _log(
    mlflow_client, run_id: str, *, params: Mapping[str, Any] = (), metrics: Mapping = ()
) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    mlflow_client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in dict(metrics).items()],
        params=[Param(k, str(v)) for k, v in dict(params).items()],
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
