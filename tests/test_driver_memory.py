"""What the search's driver keeps per trial, in a long search: of a finished trial, Tune's real
``Trial`` trimmed to what is read again (poptune/driver/finished.py); every trial's resources one
object (poptune/driver/resources.py). No Ray cluster: Tune's own classes, driven by hand."""

from __future__ import annotations

import copy
import json
import math

import pytest
from ray import cloudpickle
from ray.train import Checkpoint
from ray.train._internal.session import _TrainingResult  # how Tune hands a checkpoint over
from ray.tune.execution.placement_groups import resource_dict_to_pg_factory
from ray.tune.experiment import Trial
from ray.tune.trainable.function_trainable import wrap_function

from poptune import compat
from poptune.compat import ray_tune_compat
from poptune.driver.finished import FinishedTrials
from poptune.driver.resources import per_trial
from poptune.driver.settings import SearchSettings
from poptune.driver.tune_config import trainable_for
from poptune.metric import METRIC


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(compat, "_warned", set())
    monkeypatch.delenv(compat.PUBLIC_PATHS_ENV, raising=False)


def _epoch(epoch: int) -> dict:
    """One epoch's result as Tune holds it: poptune's keys and Tune's own."""
    val_mse = 300.0 - 20 * epoch + (25 if epoch == 4 else 0)  # best at epoch 3
    return {
        "epoch": epoch,
        "train_loss": val_mse / 230,
        "val_mse": val_mse,
        "val_rmse": math.sqrt(val_mse),
        "val_mae": 0.8 * math.sqrt(val_mse),
        "seconds": 1.5,
        "diverged": False,
        "ended_at": 1.7e9 + epoch,
        "resumed_from_epoch": 0,
        "node_id": "n1",
        "training_iteration": epoch,
        "time_this_iter_s": 1.6,
        "time_total_s": 1.6 * epoch,
        "done": False,
        "checkpoint_dir_name": f"checkpoint_{epoch - 1:06d}",
    }


def _trained_trial(tmp_path, trial_id: str = "t1", epochs: int = 4) -> Trial:
    """A Tune trial after ``epochs`` epochs, each reported with a checkpoint."""
    trial = Trial("trainable", stub=True, trial_id=trial_id, config={"family": "MLP2Layer"})
    trial.create_placement_group_factory()
    for epoch in range(1, epochs + 1):
        result = _epoch(epoch)
        path = tmp_path / trial_id / result["checkpoint_dir_name"]
        path.mkdir(parents=True)
        trial.update_last_result(result)
        checkpoint = _TrainingResult(Checkpoint.from_directory(str(path)), metrics=result)
        trial.run_metadata.checkpoint_manager.register_checkpoint(checkpoint)
    return trial


def _complete(trial: Trial) -> None:
    FinishedTrials().on_trial_complete(iteration=9, trials=[trial], trial=trial)


def test_a_finished_trial_keeps_its_metrics_summary_last_result_and_newest_checkpoint(tmp_path):
    trial = _trained_trial(tmp_path)
    summary = copy.deepcopy(trial.metric_analysis[METRIC])
    last = copy.deepcopy(trial.last_result)
    newest = trial.checkpoint.path
    _, untrimmed = trial.get_json_state()  # cached by Tune until the metadata changes
    assert len(trial.metric_n_steps) == len(trial.metric_analysis) > 10

    _complete(trial)
    assert trial.metric_analysis == {METRIC: summary}
    assert summary["min"] == 240.0 and summary["last"] == 245.0
    # The kept metric keeps its running windows (Tune would update them on another result).
    assert set(trial.metric_n_steps) == {METRIC}
    assert trial.last_result == last
    manager = trial.run_metadata.checkpoint_manager
    assert [r.checkpoint.path for r in manager.best_checkpoint_results] == [newest]
    assert trial.checkpoint.path == newest
    # Tune's next save of the experiment writes the trimmed state, which reads back whole.
    state, trimmed = trial.get_json_state()
    assert len(trimmed) < len(untrimmed) / 3
    assert json.loads(trimmed)["metric_analysis"] == {METRIC: summary}
    restored = Trial.from_json_state(state, stub=True)
    restored.restore_run_metadata(trimmed)
    assert restored.metric_analysis == {METRIC: summary}
    assert restored.last_result == last and restored.checkpoint.path == newest


def test_an_errored_trial_is_left_for_retry_errored(tmp_path):
    trial = _trained_trial(tmp_path)
    _, before = trial.get_json_state()
    FinishedTrials().on_trial_error(iteration=9, trials=[trial], trial=trial)
    assert trial.get_json_state()[1] == before
    trial.update_last_result(_epoch(5))  # Tune goes on with it after a retry: no KeyError
    assert trial.metric_analysis[METRIC]["last"] == _epoch(5)[METRIC]


def test_another_ray_keeps_finished_trials_whole_and_says_so_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    trials = [_trained_trial(tmp_path, trial_id) for trial_id in ("a", "b")]
    for trial in trials:
        _complete(trial)
        assert len(trial.metric_n_steps) > 10
        assert ray_tune_compat.checkpoint_results_of(trial) == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "poptune: warning: POPTUNE_PUBLIC_PATHS is set; Tune keeps each finished trial's "
        "per-metric running windows and every checkpoint's result in the driver's memory (tens "
        "of KB a trial: the driver grows with a long search)"
    ]


def _surrogate(config: dict) -> None:
    """A trainable taking the config, as benchmarks swap in for poptune's."""


def test_every_trial_asks_for_one_and_the_same_resources_object():
    """Tune asks a freshly unpickled copy of the trainable for each trial's resources."""
    settings = SearchSettings(name="x", cpus_per_trial=2, gpus_per_trial=0)
    trainable = trainable_for(settings, None, _surrogate)
    factories = []
    for config in ({"family": "MLP1Layer"}, {"family": "MLP2Layer", "width_2": 8}):
        copy_of = cloudpickle.loads(cloudpickle.dumps(wrap_function(trainable)))
        factories.append(copy_of.default_resource_request(config))
    first, second = factories
    assert first is second
    assert first == resource_dict_to_pg_factory({"cpu": 2, "gpu": 0})
    assert per_trial(1, 1)({}) == resource_dict_to_pg_factory({"cpu": 1, "gpu": 1})
    assert per_trial(1, 0)({}) is per_trial(1.0, 0.0)({"lr": 1e-3})


def test_the_driver_gives_freed_memory_back_at_each_save_and_saves_no_state(monkeypatch):
    from ray.tune.callback import CallbackList

    from poptune.driver import finished

    calls = []
    monkeypatch.setattr(finished, "return_freed_memory", lambda: calls.append(1) or True)
    callbacks = CallbackList([FinishedTrials()])
    for _ in range(3):  # what Tune does at each save of the experiment
        assert callbacks.get_state() is None
    assert len(calls) == 3


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_giving_freed_memory_back_frees_it():
    from poptune.driver.finished import return_freed_memory

    held = [bytearray(4096) for _ in range(20_000)]  # 80 MB of malloc's small blocks
    del held[:-1]  # freed, below the last one: glibc keeps them for reuse
    before = _rss_mb()
    if not return_freed_memory():
        pytest.skip("not glibc: nothing is kept that way")
    assert _rss_mb() < before - 40
