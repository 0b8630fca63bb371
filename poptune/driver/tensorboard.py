"""TensorBoard for every trial: per-epoch curves and an HParams row that shows the *best* epoch.

Tune's own TBX logger writes scalars under ``ray/tune/…`` and an HParams entry only when a trial
ends, with the *last* reported values: an ASHA-stopped or overfitting trial then shows a worse
val_mse than the model analysis would retrain. :class:`TrialTensorBoard` writes instead, into
each trial's folder (``{family}_{trial_id}``):

- scalars per epoch: ``train_loss``, ``val_mse``, ``val_rmse``, ``val_mae``, and the running
  ``best_val_mse``, ``best_epoch`` and ``epochs_trained`` (the HParams metrics, so the dashboard
  is right while a trial runs and for every trial stopped early);
- HParams records: the experiment (every key of the search space, with its domain), the
  session start (this trial's sampled config) when the trial starts, and its end status.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from ray.tune.logger import TBXLoggerCallback
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from poptune.metric import METRIC
from poptune.spaces import Domain, space_domains

CURVES = ("train_loss", "val_mse", "val_rmse", "val_mae")
BEST_METRIC = f"best_{METRIC}"
# The metrics of the HParams table, each a scalar of every trial's event file.
HPARAM_METRICS = {
    BEST_METRIC: "lowest validation MSE over the trial's epochs (what TPE and analysis use)",
    "best_epoch": "epoch of the lowest validation MSE",
    "epochs_trained": "epochs the trial ran before it ended or ASHA stopped it",
    "stopped_early": "1 when the scheduler stopped the trial before its last epoch",
    METRIC: "validation MSE of the last epoch",
}


@dataclass
class TrialBest:
    """The running summary of one trial; Tune saves it with the experiment, so a resumed
    trial keeps the best of the epochs it ran before the interruption."""

    best: float = math.inf
    best_epoch: int = 0
    epochs: int = 0

    def update(self, epoch: int, value: float | None) -> None:
        self.epochs = max(self.epochs, epoch)
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch


class TrialBoard:
    """The event file of one trial (plain TensorBoard, no Ray: testable on its own)."""

    def __init__(self, logdir: str | Path, config: dict[str, Any], best: TrialBest) -> None:
        self._writer = SummaryWriter(log_dir=str(logdir), flush_secs=30)
        self._best = best
        self._add_hparams_summary(metadata.EXPERIMENT_TAG, experiment=experiment_info())
        self._add_hparams_summary(
            metadata.SESSION_START_INFO_TAG, session_start_info=session_start(config)
        )
        self._writer.flush()

    def epoch(self, stats: dict[str, Any]) -> None:
        step = int(stats["epoch"])
        for tag in CURVES:
            value = stats.get(tag)
            if isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(tag, value, step)
        self._best.update(step, stats.get(METRIC))
        self._write_best(step)
        self._writer.flush()

    def close(self, *, failed: bool, max_epochs: int, diverged: bool = False) -> None:
        """Record how the trial ended (its HParams status) and close the event file."""
        step = self._best.epochs
        stopped = not failed and not diverged and 0 < self._best.epochs < max_epochs
        self._writer.add_scalar("stopped_early", float(stopped), step)
        status = api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS
        end = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
        self._add_hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)
        self._writer.close()

    def detach(self) -> None:
        """Close the event file without an end record: the trial has not ended (restart,
        interrupted experiment); TensorBoard keeps showing it as running."""
        self._writer.close()

    def _write_best(self, step: int) -> None:
        if math.isfinite(self._best.best):
            self._writer.add_scalar(BEST_METRIC, self._best.best, step)
            self._writer.add_scalar("best_epoch", self._best.best_epoch, step)
        self._writer.add_scalar("epochs_trained", self._best.epochs, step)

    def _add_hparams_summary(self, tag: str, **data: Any) -> None:
        content = plugin_data_pb2.HParamsPluginData(**data)
        summary = Summary(
            value=[
                Summary.Value(
                    tag=tag,
                    metadata=metadata.create_summary_metadata(content),
                    tensor=metadata.NULL_TENSOR,
                )
            ]
        )
        self._writer.file_writer.add_summary(summary)


class TrialTensorBoard(TBXLoggerCallback):
    """Tune callback writing a :class:`TrialBoard` per trial.

    It subclasses Tune's TBX logger only so that Tune does not add its own (Tune adds the default
    loggers it does not find among the callbacks): its last-value HParams would contradict these.
    The JSON and CSV logs `poptune analyze` reads are :mod:`poptune.driver.trial_logs`'.
    """

    def __init__(self, max_epochs: int) -> None:
        # TBXLoggerCallback.__init__ is skipped on purpose: it sets up tensorboardX writers that
        # this class never uses.
        self._max_epochs = max_epochs
        self._boards: dict[str, TrialBoard] = {}
        self._bests: dict[str, TrialBest] = {}

    def log_trial_start(self, trial) -> None:
        self._detach(trial.trial_id)  # a trial restarted after a failure reopens its board
        trial.init_local_path()
        best = self._bests.setdefault(trial.trial_id, TrialBest())
        self._boards[trial.trial_id] = TrialBoard(trial.local_path, trial.config, best)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if trial.trial_id not in self._boards:
            self.log_trial_start(trial)
        if "epoch" in result:
            self._boards[trial.trial_id].epoch(result)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        last = trial.last_result or {}
        self._close(trial.trial_id, failed=failed, diverged=bool(last.get("diverged")))

    def on_experiment_end(self, trials, **info) -> None:
        for trial_id in list(self._boards):
            self._detach(trial_id)  # only trials that did not end are still open

    def get_state(self) -> dict | None:
        return {"bests": {k: asdict(v) for k, v in self._bests.items()}}

    def set_state(self, state: dict) -> None:
        self._bests = {k: TrialBest(**v) for k, v in state.get("bests", {}).items()}

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment; open event files stay behind.
        return {**self.__dict__, "_boards": {}}

    def _close(self, trial_id: str, *, failed: bool, diverged: bool = False) -> None:
        board = self._boards.pop(trial_id, None)
        if board is not None:
            board.close(failed=failed, max_epochs=self._max_epochs, diverged=diverged)
        if not failed:
            # A finished trial's board never reopens: its running best is not kept (nor saved
            # with the experiment) for every trial of a long search. A failed one's is, for
            # --retry-errored.
            self._bests.pop(trial_id, None)

    def _detach(self, trial_id: str) -> None:
        board = self._boards.pop(trial_id, None)
        if board is not None:
            board.detach()


def experiment_info() -> api_pb2.Experiment:
    """Every hyperparameter of the space with its domain, and the metrics worth sorting by.

    Written identically into every trial: TensorBoard takes the first experiment record it finds,
    so each must list all keys (a trial records only those its family has).
    """
    hparams = [_hparam(key, domain) for key, domain in space_domains().items()]
    metrics = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(tag=tag),
            description=text,
            dataset_type=api_pb2.DATASET_VALIDATION,
        )
        for tag, text in HPARAM_METRICS.items()
    ]
    return api_pb2.Experiment(
        name="poptune", hparam_infos=hparams, metric_infos=metrics, time_created_secs=time.time()
    )


def session_start(config: dict[str, Any]) -> plugin_data_pb2.SessionStartInfo:
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in config.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, str):
            info.hparams[key].string_value = value
        elif isinstance(value, int | float):
            info.hparams[key].number_value = float(value)
    return info


def _hparam(name: str, domain: Domain) -> api_pb2.HParamInfo:
    """A key's HParams column: its choices (strings or numbers), or its interval."""
    if domain.kind != "categorical":
        interval = api_pb2.Interval(min_value=domain.low, max_value=domain.high)
        return api_pb2.HParamInfo(
            name=name, type=api_pb2.DATA_TYPE_FLOAT64, domain_interval=interval
        )
    if all(isinstance(v, str) for v in domain.choices):
        kind = api_pb2.DATA_TYPE_STRING
        items = [struct_pb2.Value(string_value=v) for v in domain.choices]
    else:
        kind = api_pb2.DATA_TYPE_FLOAT64
        items = [struct_pb2.Value(number_value=float(v)) for v in domain.choices]
    return api_pb2.HParamInfo(
        name=name, type=kind, domain_discrete=struct_pb2.ListValue(values=items)
    )
