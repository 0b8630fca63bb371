"""A Ray user's own tools read a poptune experiment: `ray.tune.ExperimentAnalysis` gets every
trial, its config and its val_mse per epoch, and `Tuner.restore` accepts the experiment. Neither
needs a running Ray: the experiment is plain Tune state on disk."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import ray
from ray import tune
from ray.tune import ExperimentAnalysis

from poptune.layout import BEST_CONFIG_FILE, STUDY_FILE
from poptune.metric import METRIC, MODE
from poptune.trainables.config import ModelConfig
from poptune.trainables.trainable import train_trial
from tests.shared_search import NAME, SAMPLES, asha_experiment

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def experiment(ray_cluster, ray_token, tmp_path_factory) -> Path:
    return asha_experiment(ray_cluster, ray_token, tmp_path_factory)


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def test_experiment_analysis_reads_every_trial_its_config_and_val_mse(experiment):
    ray_was_up = ray.is_initialized()
    analysis = ExperimentAnalysis(str(experiment), default_metric=METRIC, default_mode=MODE)
    assert ray.is_initialized() == ray_was_up  # reading started no Ray

    folders = {p.parent.name: p.parent for p in experiment.glob("*/params.json")}
    assert len(analysis.trials) == len(folders) == SAMPLES
    # The per-epoch val_mse poptune's searcher told Optuna: an independent record of each trial.
    study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{experiment / STUDY_FILE}")
    told = {_key(t.params): sorted(t.intermediate_values.items()) for t in study.trials}
    for trial in analysis.trials:
        folder = folders[Path(trial.path).name]
        assert trial.status == "TERMINATED"
        assert trial.config == json.loads((folder / "params.json").read_text())
        assert folder.name == f"{trial.config['family']}_{trial.trial_id}"
        curve = analysis.trial_dataframes[trial.trial_id]
        assert [v for _, v in told[_key(trial.config)]] == curve[METRIC].tolist()
        assert curve["training_iteration"].tolist() == [s for s, _ in told[_key(trial.config)]]
        assert trial.last_result[METRIC] == curve[METRIC].iloc[-1]
        assert trial.metric_analysis[METRIC]["min"] == curve[METRIC].min()
        # What the driver kept of the finished trial (poptune/driver/finished.py): that summary,
        # the last result (above) and the newest checkpoint, not every metric's running windows.
        assert set(trial.metric_analysis) == {METRIC} and set(trial.metric_n_steps) <= {METRIC}
        assert trial.checkpoint.path.endswith(f"checkpoint_{len(curve) - 1:06d}")

    # Ray's best trial over every epoch is poptune's winner.
    best = analysis.get_best_trial(METRIC, MODE, scope="all")
    winner = json.loads((experiment / BEST_CONFIG_FILE).read_text())
    reproduce = winner.pop("reproduce")
    assert ModelConfig.from_dict(best.config) == ModelConfig.from_dict(winner)
    assert best.metric_analysis[METRIC]["min"] == pytest.approx(reproduce["val_mse"])


def test_tuner_restore_accepts_the_experiment(experiment):
    assert tune.Tuner.can_restore(experiment)
    tuner = tune.Tuner.restore(str(experiment), trainable=train_trial)
    results = tuner.get_results()
    assert len(results) == SAMPLES and not results.errors
    analysis = ExperimentAnalysis(str(experiment))
    assert sorted(_key(r.config) for r in results) == sorted(
        _key(t.config) for t in analysis.trials
    )
    best = results.get_best_result(METRIC, MODE, scope="all")
    assert best.config == analysis.get_best_trial(METRIC, MODE, scope="all").config
