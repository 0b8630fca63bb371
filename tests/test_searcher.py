"""PoptuneOptunaSearch driven the way Tune drives it, into a real (SQLite) Optuna study.

Tune gives the epoch on which a trial stops (ASHA's verdict, or the last one) to
``on_trial_complete`` only; these tests replay exactly that call pattern, no cluster needed.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from poptune.metric import METRIC, MODE
from poptune.search.searcher import PoptuneOptunaSearch
from poptune.spaces import define_space

MAX_EPOCHS = 4


@pytest.fixture
def searcher(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    search = PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        sampler=optuna.samplers.RandomSampler(seed=0),
        storage=storage,
        study_name="s",
        max_epochs=MAX_EPOCHS,
    )
    return search, f"sqlite:///{tmp_path / 'study.db'}"


def _drive(search: PoptuneOptunaSearch, trial_id: str, curve: list[float], **complete) -> None:
    """Tune's calls for one trial: a result per epoch, the last one only at completion."""
    assert search.suggest(trial_id) is not None
    results = [{METRIC: v, "training_iteration": i} for i, v in enumerate(curve, start=1)]
    for result in results[:-1]:
        search.on_trial_result(trial_id, result)
    search.on_trial_complete(trial_id, result=results[-1], **complete)


def test_states_values_and_the_stopping_epoch_reach_the_study(searcher):
    search, url = searcher
    _drive(search, "full", [300.0, 150.0, 160.0, 170.0])  # ran all epochs: best, not last
    _drive(search, "full_best_last", [300.0, 200.0, 180.0, 120.0])  # best on the final epoch
    _drive(search, "asha", [400.0, 380.0])  # stopped by the scheduler after 2 epochs
    _drive(search, "broken", [500.0], error=True)

    study = optuna.load_study(study_name="s", storage=url)
    trials = study.get_trials()
    assert len(trials) == 4
    full, best_last, asha, broken = trials
    assert full.state == TrialState.COMPLETE and full.value == 150.0
    # The final epoch never reaches on_trial_result; it must still count as the best.
    assert best_last.state == TrialState.COMPLETE and best_last.value == 120.0
    assert best_last.intermediate_values == {1: 300.0, 2: 200.0, 3: 180.0, 4: 120.0}
    # Pruned with its *last* value (the stopping epoch), which TPE learns from.
    assert asha.state == TrialState.PRUNED and asha.value == 380.0
    assert asha.intermediate_values == {1: 400.0, 2: 380.0}
    assert broken.state == TrialState.FAIL


def test_a_diverged_final_epoch_is_complete_not_pruned(searcher):
    search, url = searcher
    search.suggest("d")
    search.on_trial_result("d", {METRIC: 200.0, "training_iteration": 1})
    search.on_trial_complete("d", result={METRIC: 350.0, "training_iteration": 2, "diverged": True})
    trial = optuna.load_study(study_name="s", storage=url).get_trials()[0]
    assert trial.state == TrialState.COMPLETE and trial.value == 200.0


def test_a_repeated_final_result_is_not_reported_twice(searcher):
    """FIFO: the last epoch arrives through on_trial_result and again at completion."""
    search, url = searcher
    search.suggest("f")
    for i, v in enumerate([90.0, 80.0], start=1):
        search.on_trial_result("f", {METRIC: v, "training_iteration": i})
    search.on_trial_complete("f", result={METRIC: 80.0, "training_iteration": 2})
    trial = optuna.load_study(study_name="s", storage=url).get_trials()[0]
    assert trial.intermediate_values == {1: 90.0, 2: 80.0}
    assert trial.value == 80.0
