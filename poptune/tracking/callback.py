"""One MLflow run per trial, nested under the search run: Ray's MLflowLoggerCallback, adapted.

Ray's callback logs every number of every result (Tune's own bookkeeping too) at step
``training_iteration``, and starts a new run whenever the driver restarts. Here a trial run gets
the trial's config as params and its learning curves at step = epoch, and a trial that goes on
after ``--resume`` (or a restart from its checkpoint) goes on in its own run, found by its
trial id. Tune pickles this callback with the experiment, so a resumed search logs to the same
tracking URI and search run.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

# ray.air.integrations.mlflow is where Ray documents the callback (ray.tune.logger.mlflow only
# re-exports it): a public path. Its run per trial is private state: see compat.ray_tune_compat.
from ray.air.integrations.mlflow import MLflowLoggerCallback

from poptune.compat import ray_tune_compat
from poptune.driver.tune_config import trial_dirname
from poptune.tracking.runs import EXPERIMENT_TAG, TRIAL_TAG, allow_file_store, client, search_run

# What a trial reports per epoch that is worth a curve (the rest is Tune's bookkeeping).
CURVES = ("train_loss", "val_mse", "val_rmse", "val_mae")
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: nests a run under another in its UI


class TrialRuns(MLflowLoggerCallback):
    def __init__(self, tracking_uri: str, *, experiment_name: str, settings: dict) -> None:
        super().__init__(tracking_uri, experiment_name=experiment_name)
        self._settings = settings
        # Names this search's run in MLflow, and travels with the pickled callback: a resumed
        # search finds its run by it, a new search (--force) gets a new run.
        self._search_id = uuid.uuid4().hex
        self._client = None

    def setup(self, *args: Any, **kwargs: Any) -> None:
        # Called when the search starts (after the cluster is joined and the experiment folder
        # is checked): a search that never starts leaves no run behind in MLflow.
        allow_file_store(self.tracking_uri)
        super().setup(*args, **kwargs)
        name = self.experiment_name
        parent = search_run(self.tracking_uri, name, search_id=self._search_id,
                            settings=self._settings)  # fmt: skip
        self.tags = {PARENT_TAG: parent, EXPERIMENT_TAG: name}

    def log_trial_start(self, trial) -> None:
        runs = ray_tune_compat.trial_runs_of(self)
        if trial not in runs:
            run_id = self._existing_run(trial.trial_id)
            if run_id is None:
                tags = {**self.tags, TRIAL_TAG: trial.trial_id, "trial_name": str(trial)}
                run_id = self.mlflow_util.start_run(tags=tags, run_name=trial_dirname(trial))
                run_id = run_id.info.run_id
            runs[trial] = run_id
        # Params are write-once in MLflow; a resumed trial logs the same values again: allowed.
        self.mlflow_util.log_params(run_id=runs[trial], params_to_log=trial.config)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        from mlflow.entities import Metric

        runs = ray_tune_compat.trial_runs_of(self)
        if trial not in runs:
            self.log_trial_start(trial)
        epoch = result.get("epoch")
        if not isinstance(epoch, int | float):
            return
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(result[key]), now, int(epoch))
            for key in CURVES
            if isinstance(result.get(key), int | float) and math.isfinite(result[key])
        ]
        self._mlflow().log_batch(runs[trial], metrics=metrics)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        if trial not in ray_tune_compat.trial_runs_of(self):
            return  # its run was ended already (a stop that failed ends a trial twice)
        super().log_trial_end(trial, failed=failed)
        # Its run is ended: not kept for every trial of a long search (a trial that goes on,
        # --retry-errored, finds its run again by its trial id).
        ray_tune_compat.trial_runs_of(self).pop(trial, None)

    def _existing_run(self, trial_id: str) -> str | None:
        found = self._mlflow().search_runs(
            [self.mlflow_util.experiment_id],
            filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}'",
            max_results=1,
        )
        return found[0].info.run_id if found else None

    def _mlflow(self):
        if self._client is None:
            self._client = client(self.tracking_uri)
        return self._client

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment; the client is rebuilt on first use.
        return {**self.__dict__, "_client": None}
