"""TrialTensorBoard without a Ray cluster: a stand-in trial, the real callback, real event files
read back with TensorBoard's own reader."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.utils.callback import _create_default_callbacks
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from poptune.driver.tensorboard import (
    BEST_METRIC,
    CURVES,
    HPARAM_METRICS,
    TrialTensorBoard,
)
from poptune.spaces import define_space
from poptune.trainables import REFERENCE, ModelConfig

CONFIG = REFERENCE.to_dict()


@dataclass
class FakeTrial:
    """The part of a Tune Trial the callback touches."""

    trial_id: str
    local_path: str
    config: dict = field(default_factory=lambda: dict(CONFIG))
    last_result: dict = field(default_factory=dict)

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)

    def __hash__(self) -> int:
        return hash(self.trial_id)


def _stats(epoch: int, val_mse: float) -> dict:
    return {
        "epoch": epoch,
        "training_iteration": epoch,
        "train_loss": val_mse + 10,
        "val_mse": val_mse,
        "val_rmse": val_mse**0.5,
        "val_mae": val_mse / 20,
        "diverged": False,
    }


def _run(callback: TrialTensorBoard, trial: FakeTrial, curve: list[float], **end) -> None:
    callback.on_trial_start(iteration=0, trials=[trial], trial=trial)
    for epoch, value in enumerate(curve, start=1):
        result = _stats(epoch, value)
        trial.last_result = result
        callback.on_trial_result(iteration=epoch, trials=[trial], trial=trial, result=result)
    if end.get("failed"):
        callback.on_trial_error(iteration=99, trials=[trial], trial=trial)
    else:
        callback.on_trial_complete(iteration=99, trials=[trial], trial=trial)


def _read(logdir: str) -> EventAccumulator:
    acc = EventAccumulator(logdir)
    acc.Reload()
    return acc


def _scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_curves_and_best_metrics_per_epoch(tmp_path):
    trial = FakeTrial("t1", str(tmp_path / "MLP3LayerDropout_t1"))
    curve = [300.0, 180.0, 190.0, 200.0]
    _run(TrialTensorBoard(max_epochs=4), trial, curve)
    acc = _read(trial.local_path)
    assert set(acc.Tags()["scalars"]) >= {*CURVES, *HPARAM_METRICS}
    assert not [t for t in acc.Tags()["scalars"] if t.startswith("ray/")]
    assert [v for _, v in _scalars(acc, "val_mse")] == pytest.approx(curve)
    assert [s for s, _ in _scalars(acc, "val_mse")] == [1, 2, 3, 4]
    # The running best: what the HParams dashboard shows is the min of the curve, not the last.
    assert [v for _, v in _scalars(acc, BEST_METRIC)] == pytest.approx([300, 180, 180, 180])
    assert _scalars(acc, BEST_METRIC)[-1][1] == pytest.approx(min(curve))
    assert _scalars(acc, "best_epoch")[-1][1] == 2
    assert _scalars(acc, "epochs_trained")[-1][1] == 4
    assert _scalars(acc, "stopped_early")[-1][1] == 0


def test_hparams_record_holds_the_sampled_config_and_every_space_key(tmp_path):
    trial = FakeTrial("t2", str(tmp_path / "MLP3LayerDropout_t2"))
    _run(TrialTensorBoard(max_epochs=2), trial, [50.0, 40.0])
    content = _read(trial.local_path).PluginTagToContent(metadata.PLUGIN_NAME)
    assert set(content) == {
        metadata.EXPERIMENT_TAG,
        metadata.SESSION_START_INFO_TAG,
        metadata.SESSION_END_INFO_TAG,
    }
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    values = {
        k: v.string_value if v.HasField("string_value") else v.number_value
        for k, v in start.hparams.items()
    }
    assert values == CONFIG
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert {m.name.tag for m in experiment.metric_infos} == {*HPARAM_METRICS}
    # Every key the search samples, with the domain Optuna sees, so that a row of any family has
    # its columns and the recipe can be filtered and plotted.
    infos = {h.name: h for h in experiment.hparam_infos}
    sampled = _sampled_distributions()
    assert set(infos) == set(sampled) == {f.name for f in dataclasses.fields(ModelConfig)}
    for name, dist in sampled.items():
        info = infos[name]
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            shown = [v.string_value or v.number_value for v in info.domain_discrete.values]
            assert shown == list(dist.choices), name
            strings = all(isinstance(c, str) for c in dist.choices)
            assert info.type == (api_pb2.DATA_TYPE_STRING if strings else api_pb2.DATA_TYPE_FLOAT64)
        else:
            bounds = (info.domain_interval.min_value, info.domain_interval.max_value)
            assert bounds == (dist.low, dist.high), name
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_SUCCESS


def test_a_trial_stopped_early_still_gets_its_row(tmp_path):
    trial = FakeTrial("t3", str(tmp_path / "MLP2Layer_t3"), config={"family": "MLP2Layer"})
    _run(TrialTensorBoard(max_epochs=10), trial, [250.0, 240.0])
    acc = _read(trial.local_path)
    assert _scalars(acc, "stopped_early")[-1][1] == 1
    assert _scalars(acc, BEST_METRIC)[-1][1] == 240.0
    assert metadata.SESSION_END_INFO_TAG in acc.PluginTagToContent(metadata.PLUGIN_NAME)


def test_a_failed_trial_is_marked_failed(tmp_path):
    trial = FakeTrial("t4", str(tmp_path / "MLP3LayerDropout_t4"))
    _run(TrialTensorBoard(max_epochs=5), trial, [90.0], failed=True)
    content = _read(trial.local_path).PluginTagToContent(metadata.PLUGIN_NAME)
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == api_pb2.STATUS_FAILURE


def test_a_resumed_trial_keeps_the_best_of_its_earlier_epochs(tmp_path):
    """Tune saves callback state with the experiment; a restored callback continues the best."""
    trial = FakeTrial("t5", str(tmp_path / "MLP3LayerDropout_t5"))
    first = TrialTensorBoard(max_epochs=4)
    first.on_trial_start(iteration=0, trials=[trial], trial=trial)
    for epoch, value in ((1, 100.0), (2, 80.0)):
        first.on_trial_result(
            iteration=epoch, trials=[trial], trial=trial, result=_stats(epoch, value)
        )
    state = first.get_state()
    first.on_experiment_end(trials=[trial])  # interrupted: closed without an end record

    resumed = TrialTensorBoard(max_epochs=4)
    resumed.set_state(state)
    resumed.on_trial_start(iteration=0, trials=[trial], trial=trial)
    for epoch, value in ((3, 90.0), (4, 85.0)):
        resumed.on_trial_result(
            iteration=epoch, trials=[trial], trial=trial, result=_stats(epoch, value)
        )
    resumed.on_trial_complete(iteration=9, trials=[trial], trial=trial)
    acc = _read(trial.local_path)
    assert _scalars(acc, BEST_METRIC)[-1] == (4, 80.0)
    assert _scalars(acc, "best_epoch")[-1][1] == 2


def test_tune_keeps_its_json_and_csv_loggers_but_adds_no_tbx_of_its_own():
    """Analysis reads result.json; a second TBX logger would write last-value HParams."""
    callbacks = _create_default_callbacks([TrialTensorBoard(max_epochs=3)])
    assert sum(isinstance(c, TBXLoggerCallback) for c in callbacks) == 1
    assert any(isinstance(c, JsonLoggerCallback) for c in callbacks)
    assert any(isinstance(c, CSVLoggerCallback) for c in callbacks)


def test_the_callback_pickles_without_open_files(tmp_path):
    import pickle

    trial = FakeTrial("t6", str(tmp_path / "MLP3LayerDropout_t6"))
    callback = TrialTensorBoard(max_epochs=3)
    callback.on_trial_start(iteration=0, trials=[trial], trial=trial)
    clone = pickle.loads(pickle.dumps(callback))
    assert clone._boards == {}
    callback.on_experiment_end(trials=[trial])


def test_an_ended_trial_leaves_no_writer_open_and_no_state_behind(tmp_path):
    """A long search's callback holds the trials running, not every trial it has seen: an
    ended trial's event file is closed, and its running best kept (and saved with the
    experiment) only if it failed, for --retry-errored."""
    callback = TrialTensorBoard(max_epochs=3)
    done = FakeTrial("t7", str(tmp_path / "MLP2Layer_t7"))
    broken = FakeTrial("t8", str(tmp_path / "MLP2Layer_t8"))
    running = FakeTrial("t9", str(tmp_path / "MLP2Layer_t9"))
    _run(callback, done, [120.0, 110.0])
    _run(callback, broken, [130.0], failed=True)
    callback.on_trial_start(iteration=0, trials=[running], trial=running)
    callback.on_trial_result(iteration=1, trials=[running], trial=running, result=_stats(1, 99.0))
    assert set(callback._boards) == {"t9"}
    assert set(callback.get_state()["bests"]) == {"t8", "t9"}
    writer = callback._boards["t9"]._writer
    callback.on_trial_complete(iteration=2, trials=[running], trial=running)
    assert callback._boards == {} and set(callback.get_state()["bests"]) == {"t8"}
    assert writer.file_writer is None  # SummaryWriter.close() lets go of its event file
    assert _scalars(_read(running.local_path), BEST_METRIC)[-1] == (1, 99.0)


def _sampled_distributions() -> dict:
    """What Optuna itself records for the space over enough random trials to meet every branch."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        define_space(trial)
        study.tell(trial, 0.0)
    return {k: d for t in study.trials for k, d in t.distributions.items()}
