"""PoptuneOptunaSearch driven the way Tune drives it, into a real (SQLite) Optuna study.

Tune gives the epoch on which a trial stops (ASHA's verdict, or the last one) to
``on_trial_complete`` only; these tests replay exactly that call pattern, no cluster needed.
"""

from __future__ import annotations

import pickle

import optuna
import pytest
from optuna.trial import TrialState

from poptune.driver.searcher import PoptuneOptunaSearch, study_copy_of_this_run
from poptune.metric import METRIC, MODE
from poptune.spaces import define_space
from poptune.studies.study_file import StudyFile

MAX_EPOCHS = 4


def _new_searcher(url: str) -> PoptuneOptunaSearch:
    """The searcher as the runner builds it, on the study at ``url``."""
    return PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        sampler=optuna.samplers.RandomSampler(seed=0),
        storage=optuna.storages.RDBStorage(url),
        study_name="s",
        max_epochs=MAX_EPOCHS,
    )


@pytest.fixture
def searcher(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    return _new_searcher(url), url


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


def test_restore_after_a_kill_does_not_tell_the_study_twice(searcher, tmp_path):
    """A driver told the study a trial's outcome, then was killed before Tune saved its state:
    `--resume` restores the searcher from the older save, and Tune runs that trial again."""
    search, url = searcher
    _drive(search, "done", [300.0, 200.0, 190.0, 180.0])  # finished before the save
    for trial_id in ("told", "running"):
        assert search.suggest(trial_id) is not None
        search.on_trial_result(trial_id, {METRIC: 250.0, "training_iteration": 1})
    saved = tmp_path / "searcher-state.pkl"
    search.save(str(saved))  # Tune's last save: "told" and "running" are in progress
    search.on_trial_result("told", {METRIC: 150.0, "training_iteration": 2})
    search.on_trial_result("told", {METRIC: 145.0, "training_iteration": 3})
    search.on_trial_complete("told", result={METRIC: 140.0, "training_iteration": 4})
    told = optuna.load_study(study_name="s", storage=url).get_trials()[1]
    assert told.state == TrialState.COMPLETE and told.value == 140.0
    del search  # killed: nothing more is saved

    resumed = _new_searcher(url)
    resumed.restore(str(saved))
    # Tune runs "told" again from its checkpoint, and "running" on to its end.
    for trial_id, curve in (("told", [170.0, 165.0, 160.0]), ("running", [240.0, 230.0, 220.0])):
        for epoch, value in enumerate(curve[:-1], start=2):
            resumed.on_trial_result(trial_id, {METRIC: value, "training_iteration": epoch})
        final = {METRIC: curve[-1], "training_iteration": 1 + len(curve)}
        resumed.on_trial_complete(trial_id, result=final)  # no "already finished" from Optuna
    _drive(resumed, "after", [210.0, 205.0, 200.0, 199.0])  # and the search goes on

    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    done, told, running, after = trials
    assert done.value == 180.0
    # "told" keeps the outcome it was told first; the rerun's epochs are not added to it.
    assert told.value == 140.0
    assert told.intermediate_values == {1: 250.0, 2: 150.0, 3: 145.0, 4: 140.0}
    # "running" carries on from the saved state: its epoch 1 from before the kill, the rest after.
    assert running.value == 220.0
    assert running.intermediate_values == {1: 250.0, 2: 240.0, 3: 230.0, 4: 220.0}
    assert after.value == 199.0 and after.number == 3


def test_a_told_trial_is_let_go_of_and_the_study_keeps_it(searcher):
    """Ray's searcher keeps an Optuna trial (with a copy of the study's record of it) for every
    trial it suggested; once the outcome is told, the study holds the trial, and only the trials
    in flight are kept (in memory, and in every save of the searcher)."""
    from poptune.compat.ray_tune_compat import completed_trials_of, optuna_trials_of

    search, url = searcher
    _drive(search, "full", [300.0, 150.0, 160.0, 170.0])
    _drive(search, "asha", [400.0, 380.0])
    _drive(search, "broken", [500.0], error=True)
    search.suggest("running")
    search.on_trial_result("running", {METRIC: 250.0, "training_iteration": 1})
    assert set(optuna_trials_of(search)) == {"running"}
    assert completed_trials_of(search) == {"full", "asha", "broken"}
    # A late or repeated word about a told trial changes nothing (Ray's own searcher warns).
    search.on_trial_result("full", {METRIC: 1.0, "training_iteration": 5})
    search.on_trial_complete("full", result={METRIC: 1.0, "training_iteration": 5})
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [(t.state, t.value) for t in trials] == [
        (TrialState.COMPLETE, 150.0),
        (TrialState.PRUNED, 380.0),
        (TrialState.FAIL, None),
        (TrialState.RUNNING, None),
    ]
    search.on_trial_complete("running", result={METRIC: 240.0, "training_iteration": 4})
    assert optuna_trials_of(search) == {}


def test_an_in_memory_study_is_copied_at_each_save_and_a_resume_rewrites_the_copy(tmp_path):
    """Without --study-storage: the study lives in the searcher, and optuna_study.db is its copy
    as of Tune's last save. Killed after a trial finished but before the next save, the search
    resumes from that save: the trial runs again, and the file shows what the study holds."""
    url = f"sqlite:///{tmp_path / 'optuna_study.db'}"

    def new_searcher() -> PoptuneOptunaSearch:
        return PoptuneOptunaSearch(
            space=define_space,
            metric=METRIC,
            mode=MODE,
            sampler=optuna.samplers.RandomSampler(seed=0),
            study_name="s",
            max_epochs=MAX_EPOCHS,
            study_file=StudyFile(url, "s"),
        )

    search = new_searcher()
    _drive(search, "done", [300.0, 200.0, 190.0, 180.0])
    assert search.suggest("rerun") is not None
    search.on_trial_result("rerun", {METRIC: 250.0, "training_iteration": 1})
    saved = tmp_path / "searcher-state.pkl"
    search.save(str(saved))
    stored = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [(t.state, t.value) for t in stored] == [
        (TrialState.COMPLETE, 180.0),
        (TrialState.RUNNING, None),
    ]
    assert stored[1].intermediate_values == {1: 250.0}
    for epoch, value in ((2, 150.0), (3, 145.0)):
        search.on_trial_result("rerun", {METRIC: value, "training_iteration": epoch})
    search.on_trial_complete("rerun", result={METRIC: 140.0, "training_iteration": 4})
    del search  # killed before the next save: the study's outcome for "rerun" is lost with it

    resumed = new_searcher()
    resumed.restore(str(saved))
    for epoch, value in ((2, 170.0), (3, 165.0)):
        resumed.on_trial_result("rerun", {METRIC: value, "training_iteration": epoch})
    resumed.on_trial_complete("rerun", result={METRIC: 160.0, "training_iteration": 4})
    _drive(resumed, "after", [210.0, 205.0, 200.0, 199.0])
    resumed.save(str(saved))

    stored = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [(t.number, t.state, t.value) for t in stored] == [
        (0, TrialState.COMPLETE, 180.0),
        (1, TrialState.COMPLETE, 160.0),
        (2, TrialState.COMPLETE, 199.0),
    ]
    assert stored[1].intermediate_values == {1: 250.0, 2: 170.0, 3: 165.0, 4: 160.0}


def test_a_searcher_unpickled_for_this_run_copies_its_study_where_this_run_says(tmp_path):
    """--resume of an experiment moved, renamed, or taken to a bucket since its last save:
    Tune unpickles the searcher itself (with the Tuner, and from its saved state); inside
    study_copy_of_this_run the searcher copies its study to this run's file, or to none."""
    old = StudyFile(f"sqlite:///{tmp_path / 'old' / 'optuna_study.db'}", "old")
    new = StudyFile(f"sqlite:///{tmp_path / 'new' / 'optuna_study.db'}", "new")
    search = PoptuneOptunaSearch(
        space=define_space, metric=METRIC, mode=MODE, study_name="s", max_epochs=MAX_EPOCHS,
        study_file=old,
    )  # fmt: skip
    pickled = pickle.dumps(search)
    saved = tmp_path / "searcher-state.pkl"
    search.save(str(saved))

    def copies_to(run: StudyFile | None) -> tuple:
        with study_copy_of_this_run(run):
            unpickled = pickle.loads(pickled)
            restored = pickle.loads(pickle.dumps(search))  # as Tune restores: into a searcher
            restored._study_file = old  # ...that was unpickled with the old file
            restored.restore(str(saved))
        return unpickled._study_file, restored._study_file

    assert copies_to(new) == (new, new)
    assert copies_to(None) == (None, None)  # now on s3:// or gs://: copied when the search ends
    assert pickle.loads(pickled)._study_file.url == old.url  # outside the block: as saved


def test_suggestions_are_the_configs_rays_own_searcher_gives():
    """The trial's own params stand in for Ray's capturing proxy: same configs, starting points
    (enqueued, fixed values) included, for the same sampler seed and study history."""
    from ray.tune.search.optuna import OptunaSearch

    from poptune.driver.tune_config import starting_points

    def configs(cls: type, **extra) -> list[dict]:
        search = cls(
            space=define_space,
            metric=METRIC,
            mode=MODE,
            points_to_evaluate=starting_points(40),
            sampler=optuna.samplers.TPESampler(seed=3, n_startup_trials=5),
            **extra,
        )
        out = []
        for i in range(12):
            out.append(search.suggest(f"t{i}"))
            search.on_trial_complete(f"t{i}", {METRIC: 200.0 + i % 5, "training_iteration": 1})
        return out

    ours = configs(PoptuneOptunaSearch, max_epochs=1)
    assert ours == configs(OptunaSearch)
    assert ours[0]["family"] == "MLP3LayerDropout" and len({str(c) for c in ours}) == 12
