"""The pieces that keep the search's driver fast at scale, each against the real thing it stands
in for: the TPE window against the whole study, TPE's scores in C against Optuna's, the
single-writer study cache against a fresh reader of the same database, newest-first scheduling,
and the concurrency limit taken from the cluster's nodes and its autoscaler."""

from __future__ import annotations

import pickle
import sqlite3
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from ray.tune.experiment import Trial

from poptune.cluster.autoscale import bootstrap_autoscaling
from poptune.cluster.capacity import ClusterInfo, check_fits, max_concurrent, node_slots
from poptune.driver.scheduling import NewestFirstFIFO
from poptune.driver.settings import SearchSettings
from poptune.errors import UsageError
from poptune.samplers import parzen, truncnorm
from poptune.samplers.batch_tpe import BatchTPESampler
from poptune.samplers.window import WindowedSampler
from poptune.studies.database import InMemoryStudyStorage, driver_study_storage
from tests.numerics import assert_suggestions_close

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _bowl(trial: optuna.Trial) -> float:
    """A tiny problem whose optimum is known: 0 at x=0.3, y=-0.2, width 16."""
    x = trial.suggest_float("x", -1, 1)
    y = trial.suggest_float("y", -1, 1)
    width = trial.suggest_int("width", 1, 64, log=True)
    return (x - 0.3) ** 2 + (y + 0.2) ** 2 + 0.01 * (np.log2(width) - 4) ** 2


def _tpe(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)


# ---------------------------------------------------------------- the TPE window


def _finished_study(n: int, running: int = 3) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rng = np.random.default_rng(0)
    for _ in range(n):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        if rng.random() < 0.5:
            trial.report(float(rng.random() * 10), step=1)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, float(rng.random()))
    for _ in range(running):
        study.ask().suggest_float("x", 0, 1)
    return study


def test_the_window_is_the_whole_study_until_it_outgrows_recent_plus_best():
    study = _finished_study(75)
    sampler = WindowedSampler(_tpe(0), recent=50, best=25)
    trials = study.get_trials(deepcopy=False)
    assert sampler.select(trials, study.direction) == trials


def test_the_window_keeps_every_unfinished_trial_the_newest_and_the_best():
    study = _finished_study(400, running=5)
    sampler = WindowedSampler(_tpe(0), recent=100, best=30)
    trials = study.get_trials(deepcopy=False)
    kept = sampler.select(trials, study.direction)
    numbers = {t.number for t in kept}
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(kept) == 5 + 100 + 30
    assert {t.number for t in trials if t.state == TrialState.RUNNING} <= numbers
    assert {t.number for t in finished[-100:]} <= numbers
    # TPE's good group (the best complete trials) is all inside the window.
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert {t.number for t in complete[:30]} <= numbers
    # The oldest trials that are neither recent nor among the best are left out.
    best_values = sorted(t.value for t in kept if t.state == TrialState.COMPLETE)
    left_out = [t for t in finished[:-100] if t.number not in numbers]
    assert left_out and all(
        t.state == TrialState.PRUNED or t.value >= best_values[29] for t in left_out
    )


def _window_by_sorting(trials, recent: int, best: int) -> list:
    """The window as its definition reads (minimising): sort, take the newest, rank the rest."""
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if len(finished) <= recent + best:
        return trials
    finished.sort(key=lambda t: t.number)
    keep = {t.number for t in finished[-recent:]}

    def rank(t):
        if t.state == TrialState.COMPLETE:
            return (0, t.value, t.number)
        step, value = max(t.intermediate_values.items())
        return (1, -step, value, t.number)

    keep.update(t.number for t in sorted(finished[:-recent], key=rank)[:best])
    return [t for t in trials if t.number in keep or t not in finished]


def test_tpe_shown_the_window_splits_off_the_same_good_trials_as_shown_the_whole_study():
    """TPE's good group: a tenth of the finished trials, at most 25, counted over the study."""
    from optuna.samplers._tpe.sampler import _split_trials

    study = _finished_study(400, running=0)
    sampler = WindowedSampler(_tpe(0), recent=50, best=25)
    trials = study.get_trials(deepcopy=False)
    shown = sampler.select(trials, study.direction)
    assert len(shown) == 75
    gamma = sampler.sampler._gamma
    assert gamma(len(shown)) == 25  # what Optuna's default gives for the whole study
    good, _ = _split_trials(study, shown, gamma(len(shown)))
    whole_good, _ = _split_trials(study, trials, 25)
    assert [t.number for t in good] == [t.number for t in whole_good]
    small, fresh = _finished_study(60, running=0), WindowedSampler(_tpe(0), recent=50, best=25)
    assert fresh.sampler._gamma(len(fresh.select(small.get_trials(), small.direction))) == 6


def test_the_window_kept_up_to_date_equals_the_window_sorted_afresh():
    """Trials finish out of order (a long trial outlives many short ones); the sampler updates
    its window trial by trial instead of sorting the study at every suggestion."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = WindowedSampler(_tpe(0), recent=40, best=25)
    rng = np.random.default_rng(1)
    running: list[optuna.Trial] = []
    checked = 0
    for _ in range(300):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        running.append(trial)
        while len(running) > 12 or (running and rng.random() < 0.3):
            done = running.pop(int(rng.integers(len(running))))
            steps = int(rng.integers(1, 4))
            for step in range(1, steps + 1):
                done.report(float(rng.integers(0, 50)), step=step)  # ties on purpose
            if steps < 3:
                study.tell(done, state=TrialState.PRUNED)
            else:
                study.tell(done, float(rng.integers(0, 50)))
        trials = study.get_trials(deepcopy=False)
        if rng.random() < 0.5:  # not every change is seen: several trials finish between calls
            kept = sampler.select(trials, study.direction)
            expected = _window_by_sorting(trials, recent=40, best=25)
            assert [t.number for t in kept] == [t.number for t in expected]
            checked += len(trials) > 40 + 25 + 12
    assert checked > 100


def test_trials_not_numbered_by_their_place_are_all_looked_at_every_time():
    """The window looks only at trials unfinished last time and new ones when trial i is at
    index i (as every Optuna storage returns them); any other list is read in full."""
    study = _finished_study(200, running=6)
    trials = study.get_trials(deepcopy=False)
    sampler = WindowedSampler(_tpe(0), recent=40, best=25)
    for end in (120, 160, len(trials)):  # a study that grows, read without its trial 0
        shown = trials[1:end]
        kept = sampler.select(shown, study.direction)
        assert [t.number for t in kept] == [
            t.number for t in _window_by_sorting(shown, recent=40, best=25)
        ]
    assert [t.number for t in sampler.select(trials, study.direction)] == [
        t.number for t in _window_by_sorting(trials, recent=40, best=25)
    ]


def test_a_long_trial_that_finishes_late_and_best_stays_in_the_window():
    """Under ASHA the trials that run longest are the best ones, and finish after many newer
    short ones: the window must rank such a trial among the best, not lose it."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampler = WindowedSampler(_tpe(0), recent=2, best=25)
    long = study.ask()
    long.suggest_float("x", 0, 1)
    for i in range(40):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        study.tell(trial, 10.0 + i)
        sampler.select(study.get_trials(deepcopy=False), study.direction)
    study.tell(long, 0.0)
    trials = study.get_trials(deepcopy=False)
    kept = [t.number for t in sampler.select(trials, study.direction)]
    assert kept == [t.number for t in _window_by_sorting(trials, recent=2, best=25)]
    assert 0 in kept and len(kept) == 27


def test_tpe_splits_the_keys_into_the_same_groups_from_one_trial_per_key_set():
    def space(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        kind = trial.suggest_categorical("kind", ["a", "b", "c"])
        if kind != "a":
            x += trial.suggest_int("width", 1, 64, log=True) / 64
        if kind == "c":
            x += trial.suggest_float("dropout", 0, 0.5)
        return x * x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(space, n_trials=60)
    trial = study.ask()
    windowed, whole = WindowedSampler(_tpe(0)), _tpe(0)
    assert windowed.infer_relative_search_space(study, trial) == (
        whole.infer_relative_search_space(study, trial)
    )
    groups = [sorted(group.items()) for group in whole._search_space_group.search_spaces]
    assert len(groups) == 3
    assert [
        sorted(group.items()) for group in windowed.sampler._search_space_group.search_spaces
    ] == groups


def test_the_groups_are_inferred_again_when_a_new_set_of_keys_appears_and_only_then():
    """A set of keys that first appears late (here: dropout, after 30 trials) splits the
    groups; until one does, the groups of the last suggestion are reused."""

    def space(trial: optuna.Trial, late: bool) -> float:
        x = trial.suggest_float("x", -1, 1)
        if trial.suggest_categorical("kind", ["a", "b", "c"]) == "c" and late:
            x += trial.suggest_float("dropout", 0, 0.5)
        return x * x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    windowed, inferred = WindowedSampler(_tpe(0)), [0]
    own = windowed.sampler.infer_relative_search_space

    def counted(*args):
        inferred[0] += 1
        return own(*args)

    windowed.sampler.infer_relative_search_space = counted
    for n in range(45):
        trial = study.ask()
        got = windowed.infer_relative_search_space(study, trial)
        assert got == _tpe(0).infer_relative_search_space(study, trial)
        study.tell(trial, space(trial, late=n >= 30))
    assert 2 <= inferred[0] <= 4  # at the first finished trial, at the first dropout (not 45)
    assert "dropout" in got


def test_a_windowed_search_still_finds_the_optimum_of_a_tiny_problem():
    """Past its window (recent=30 + best=25: far smaller than a search's) TPE still closes in on
    the known optimum, and far closer than random search. (It is less sharp than TPE on the
    whole study with a window this small: 0.002 against 0.0003 here; the real window is 250.)"""

    def best(sampler: optuna.samplers.BaseSampler) -> float:
        study = optuna.create_study(sampler=sampler)
        study.optimize(_bowl, n_trials=160)
        return study.best_value

    windowed = [best(WindowedSampler(_tpe(seed), recent=30, best=25)) for seed in range(3)]
    random = [best(optuna.samplers.RandomSampler(seed=seed)) for seed in range(3)]
    assert max(windowed) < 0.01
    assert np.median(windowed) < np.median(random) / 4


def test_the_sampler_pickles_without_its_window():
    """Tune saves the searcher (and so the sampler) while the search runs; --resume loads it."""
    sampler = WindowedSampler(_tpe(0), recent=1, best=25)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_bowl, n_trials=40)
    assert sampler._window is not None  # the view of the last suggestion
    again = pickle.loads(pickle.dumps(sampler))
    assert again._window is None and again._kept is None
    optuna.create_study(sampler=again).optimize(_bowl, n_trials=3)


def test_a_window_too_small_for_tpes_good_group_is_refused():
    with pytest.raises(ValueError, match="best >= 25"):
        WindowedSampler(_tpe(0), recent=10, best=10)


# ---------------------------------------------------------------- log Φ


def test_scipy_gauss_mass_agrees_with_optunas_own():
    from optuna.samplers._tpe import _truncnorm

    rng = np.random.default_rng(0)
    a = np.concatenate([np.linspace(-30, 5.9, 400), rng.normal(0, 4, 400), [-1e3, 0.0, 1e-8]])
    b = a + np.concatenate([rng.exponential(0.5, len(a) - 3), [1.0, 1e-9, 2.0]])
    expected = _truncnorm._log_gauss_mass(a, b)
    np.testing.assert_allclose(truncnorm.log_gauss_mass(a, b), expected, rtol=1e-7, atol=1e-300)


def _mixed_space(trial: optuna.Trial) -> float:
    """Every kind of key TPE scores: categorical, float, log float, stepped float, int, log int."""
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    x = trial.suggest_float("x", -1, 1)
    x += 0.1 * np.log10(trial.suggest_float("lr", 1e-4, 1e-1, log=True))
    x += trial.suggest_float("drop", 0.0, 0.5, step=0.05)
    x += trial.suggest_int("batch", 16, 256, step=16) / 256
    if kind != "a":
        x += trial.suggest_int("width", 1, 64, log=True) / 64
    if kind == "c":
        x += trial.suggest_float("dropout", 0, 0.5)
    return (x - 0.3) ** 2


def test_draws_and_scores_in_c_equal_optunas_own_for_every_kind_of_key(monkeypatch):
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator

    study = optuna.create_study(sampler=_tpe(0))
    study.optimize(_mixed_space, n_trials=60)
    ours = BatchTPESampler(seed=1, multivariate=True, group=True, batch_from=10**9)
    trials = study.get_trials(deepcopy=False)
    space = optuna.search_space.intersection_search_space(trials)
    below, above = trials[:15], trials[15:]
    mpe = [
        ours._build_parzen_estimator(study, space, t, handle_below=h)
        for t, h in ((below, True), (above, False))
    ]
    samples = mpe[0].sample(np.random.RandomState(2), 500)
    assert isinstance(mpe[0], _ParzenEstimator) and len(samples) == len(space) >= 5
    for estimator in mpe:  # the same draws from the same random state
        drawn = parzen.sample(estimator, np.random.RandomState(2), 500)
        theirs = estimator.sample(np.random.RandomState(2), 500)
        assert drawn.keys() == theirs.keys()
        for name in drawn:
            np.testing.assert_allclose(drawn[name], theirs[name], rtol=1e-12, err_msg=name)
    theirs = optuna.samplers.TPESampler._compute_acquisition_func(ours, samples, *mpe)
    np.testing.assert_allclose(ours._compute_acquisition_func(samples, *mpe), theirs, rtol=1e-7)

    # Step for step: given SciPy's Φ and log Φ, Optuna's own code gives the same bits.
    from optuna.samplers._tpe import _truncnorm
    from scipy import special

    monkeypatch.setattr(_truncnorm, "_log_ndtr", lambda a: special.log_ndtr(np.asarray(a, float)))
    monkeypatch.setattr(_truncnorm, "_ndtr", lambda a: special.ndtr(np.asarray(a, float)))
    for estimator in mpe:
        drawn = parzen.sample(estimator, np.random.RandomState(3), 500)
        theirs = estimator.sample(np.random.RandomState(3), 500)
        assert all(np.array_equal(drawn[name], theirs[name]) for name in drawn)
        assert np.array_equal(parzen.log_pdf(estimator, drawn), estimator.log_pdf(drawn))


def _suggestions(sampler: optuna.samplers.BaseSampler, monkeypatch) -> tuple[list[dict], int]:
    """15 suggestions after 40 trials over three groups of keys, and how often TPE split."""
    from optuna.samplers._tpe import sampler as tpe_module

    calls, own = [0], tpe_module._split_trials

    def counted(*args):
        calls[0] += 1
        return own(*args)

    monkeypatch.setattr(tpe_module, "_split_trials", counted)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_mixed_space, n_trials=40)
    calls[0] = 0
    sampled = []
    for _ in range(15):
        trial = study.ask()
        group = study.sampler.infer_relative_search_space(study, trial)
        sampled.append(study.sampler.sample_relative(study, trial, group))
        study.tell(trial, float(len(sampled)))
    monkeypatch.setattr(tpe_module, "_split_trials", own)
    return sampled, calls[0]


def test_one_split_per_suggestion_samples_exactly_what_tpe_samples(monkeypatch):
    """Three groups of keys: TPE splits the trials three times a suggestion, poptune once."""
    plain, plain_splits = _suggestions(_tpe(3), monkeypatch)
    batch = BatchTPESampler(
        seed=3, multivariate=True, group=True, constant_liar=True, batch_from=10**9
    )
    once, splits = _suggestions(batch, monkeypatch)
    assert len(plain) == 15 and all(plain)
    assert_suggestions_close(once, plain)
    assert plain_splits == 3 * 15 and splits == 15


def test_a_suggestion_leaves_optunas_modules_as_they_are(monkeypatch):
    """poptune's cheaper steps are the sampler's own methods: while it scores, splits and
    draws, every name in Optuna's TPE modules is Optuna's."""
    from optuna.samplers._tpe import _truncnorm, parzen_estimator, probability_distributions
    from optuna.samplers._tpe import sampler as tpe_module

    modules = (_truncnorm, parzen_estimator, probability_distributions, tpe_module)
    before = [dict(vars(m)) for m in modules]
    seen = []

    class Watched(BatchTPESampler):
        def _compute_acquisition_func(self, *args):
            seen.append(all(dict(vars(m)) == b for m, b in zip(modules, before, strict=True)))
            return super()._compute_acquisition_func(*args)

    sampler = WindowedSampler(
        Watched(seed=0, multivariate=True, group=True, constant_liar=True, batch_from=10**9)
    )
    optuna.create_study(sampler=sampler).optimize(_mixed_space, n_trials=20)
    assert len(seen) >= 10 and all(seen)
    assert all(dict(vars(m)) == b for m, b in zip(modules, before, strict=True))


def test_remembered_params_give_tpe_the_arrays_it_would_build_itself():
    """Running trials (the constant liar reads back every key TPE suggested for them,
    dropout too where their kind has none) and finished ones (their own keys only); then some
    of the running ones finish, and their own params replace the guesses."""
    from poptune.samplers.batch_tpe import BatchTPESampler

    def space(trial: optuna.Trial) -> None:
        trial.suggest_float("x", -1, 1)
        if trial.suggest_categorical("kind", ["a", "c"]) == "c":
            trial.suggest_float("dropout", 0, 0.5)

    remembering = BatchTPESampler(
        seed=0, multivariate=True, group=True, constant_liar=True, batch_from=10**9
    )
    study = optuna.create_study(sampler=remembering)
    running = []
    for i in range(60):
        trial = study.ask()
        space(trial)
        if i < 40:
            study.tell(trial, float(i))
        else:
            running.append(trial)
    own = _tpe(0)

    def both(keys: dict) -> tuple[dict, dict]:
        trials = study.get_trials(deepcopy=False)
        return (
            remembering._get_internal_repr(trials, keys, study),
            own._get_internal_repr(trials, keys, study),
        )

    distributions = {name: d for t in study.trials for name, d in t.distributions.items()}
    groups = [
        {"x": distributions["x"], "kind": distributions["kind"]},
        {"dropout": distributions["dropout"]},
    ]
    lengths = []
    for rounds in range(2):
        for keys in groups:
            ours, theirs = both(keys)
            assert ours.keys() == theirs.keys()
            for name in ours:
                np.testing.assert_array_equal(ours[name], theirs[name])
            lengths.append(len(next(iter(ours.values()))))
        for trial in running if rounds == 0 else []:
            if trial.params["kind"] == "a":  # it finishes: its guessed dropout drops out
                study.tell(trial, 0.5)
    assert lengths[0] == lengths[2] == 60 and lengths[3] < lengths[1]
    assert remembering._remembered
    assert "_remembered" not in pickle.loads(pickle.dumps(remembering)).__dict__


def test_remembered_params_are_kept_for_the_trials_shown_past_the_bound(monkeypatch):
    """A long search's trials leave TPE's window for good: past its bound the cache keeps the
    rows of the trials shown now (not every trial's, nor none), and still answers as TPE."""
    from poptune.samplers.batch_tpe import BatchTPESampler

    remembering = BatchTPESampler(seed=0, batch_from=10**9)
    monkeypatch.setattr(remembering, "MOST_REMEMBERED", 30)
    study = optuna.create_study(sampler=remembering)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=60)
    trials = study.get_trials(deepcopy=False)
    keys = {"x": trials[0].distributions["x"]}
    own = _tpe(0)
    rows = {}
    for window in (trials[:25], trials[10:35], trials[20:50]):
        rows = {key[0]: row for key, row in remembering.__dict__.get("_remembered", {}).items()}
        ours = remembering._get_internal_repr(window, keys, study)
        np.testing.assert_array_equal(ours["x"], own._get_internal_repr(window, keys, study)["x"])
    # The first two windows filled it with 35 rows (trials 0..34); the third, past the bound,
    # kept those of its own trials (20..34), not worked out again, and added the rest.
    kept = {key[0]: row for key, row in remembering._remembered.items()}
    assert sorted(kept) == list(range(20, 50))
    assert all(kept[number] is rows[number] for number in range(20, 35))


# ---------------------------------------------------------------- the study's storage


def test_the_drivers_study_cache_reads_back_what_a_fresh_reader_sees(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = driver_study_storage(optuna.storages.RDBStorage(url))
    study = optuna.create_study(study_name="s", storage=storage, sampler=_tpe(1))
    other = optuna.load_study(study_name="s", storage=optuna.storages.RDBStorage(url))
    running = []
    for i in range(30):
        trial = study.ask()
        _bowl(trial)
        trial.report(float(i), step=1)
        if i % 3 == 0:
            running.append(trial)  # stays running for a while, as a trial on a worker does
        else:
            study.tell(trial, float(i))
        if i == 10:
            other.enqueue_trial({"x": 0.3, "y": -0.2, "width": 16})  # written by someone else
    for trial in running[::2]:
        trial.report(0.5, step=2)
        study.tell(trial, 0.5)

    def view(trials):
        return [(t.number, t.state, t.value, t.params, t.intermediate_values) for t in trials]

    fresh = optuna.load_study(study_name="s", storage=optuna.storages.RDBStorage(url))
    assert view(study.get_trials()) == view(fresh.get_trials())
    assert any(t.params == {"x": 0.3, "y": -0.2, "width": 16} for t in study.get_trials())
    with sqlite3.connect(tmp_path / "study.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # A resumed driver unpickles the storage: it must read the database again, not trust a copy.
    copy = pickle.loads(pickle.dumps(storage))
    study.tell(running[1], 0.25)
    resumed = optuna.load_study(study_name="s", storage=copy)
    assert view(resumed.get_trials()) == view(fresh.get_trials())


def test_other_storages_are_left_as_they_are():
    memory = optuna.storages.InMemoryStorage()
    assert driver_study_storage(memory) is memory
    assert isinstance(driver_study_storage(None), InMemoryStudyStorage)  # no --study-storage


def _distribution_objects(study: optuna.Study) -> set[int]:
    return {id(d) for t in study.get_trials(deepcopy=False) for d in t.distributions.values()}


def test_the_drivers_studies_keep_one_object_per_distinct_distribution(tmp_path):
    """Optuna makes a new distribution at every suggest_*, equal to the last trial's (and reads
    a new one back with every trial from a database): the driver's storages keep the first."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    for storage in (
        driver_study_storage(None),
        driver_study_storage(optuna.storages.RDBStorage(url)),
    ):
        study = optuna.create_study(study_name="s", storage=storage, sampler=_tpe(0))
        study.optimize(_bowl, n_trials=12)
        running = study.ask()
        _bowl(running)
        # Two for all 13 trials: x's and y's are equal (floats in [-1, 1]), and width's.
        assert len(_distribution_objects(study)) == 2
        plain = optuna.create_study(sampler=_tpe(0))
        plain.optimize(_bowl, n_trials=12)
        assert [t.params for t in study.trials[:12]] == [t.params for t in plain.trials]
        assert [t.distributions for t in study.trials] == [study.trials[0].distributions] * 13
        # A resumed search unpickles the study (in memory) or reads it back (a database).
        again = pickle.loads(pickle.dumps(study))
        again.optimize(_bowl, n_trials=2)
        assert len(_distribution_objects(again)) == 2


# ---------------------------------------------------------------- scheduling


def test_a_free_worker_goes_to_the_newest_waiting_trial_then_the_oldest_paused():
    scheduler = NewestFirstFIFO()
    trials = [SimpleNamespace(trial_id=f"t{i}", status=Trial.PENDING) for i in range(4)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    controller = SimpleNamespace(get_live_trials=lambda: list(trials))
    assert scheduler.choose_trial_to_run(controller).trial_id == "t3"
    for trial in trials:
        trial.status = Trial.PAUSED
    trials[0].status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller).trial_id == "t1"
    for trial in trials:
        trial.status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is None


def test_the_scheduler_forgets_the_trials_that_ended():
    """Its order is kept for the live trials only, not for every trial of a long search."""
    scheduler = NewestFirstFIFO()
    trials = [SimpleNamespace(trial_id=f"t{i}", status=Trial.PENDING) for i in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    scheduler.on_trial_complete(None, trials[0], {"val_mse": 1.0})
    scheduler.on_trial_error(None, trials[1])
    scheduler.on_trial_remove(None, trials[2])
    assert set(scheduler._added) == {"t3", "t4"}
    live = trials[3:]
    controller = SimpleNamespace(get_live_trials=lambda: list(live))
    assert scheduler.choose_trial_to_run(controller).trial_id == "t4"


# ---------------------------------------------------------------- the concurrency limit


def _settings(**overrides) -> SearchSettings:
    return SearchSettings(**{"num_samples": 8, **overrides})


def test_slots_are_counted_per_node():
    assert node_slots({"CPU": 6}, 4, 0) == 1  # one 4-CPU trial, not 1.5
    assert node_slots({"CPU": 8, "GPU": 1}, 1, 0.25) == 4
    assert node_slots({"CPU": 8}, 1, 1) == 0  # a trial needing a GPU never runs here
    two_nodes = ClusterInfo("127.0.0.1:6379", cpus=12, gpus=0, nodes=2,
                            node_resources=((6.0, 0.0), (6.0, 0.0)))  # fmt: skip
    assert max_concurrent(_settings(cpus_per_trial=4), two_nodes) == 2
    assert max_concurrent(_settings(cpus_per_trial=1), two_nodes) == 12
    assert max_concurrent(_settings(cpus_per_trial=4, max_concurrent=1), two_nodes) == 1


def test_an_autoscaling_clusters_limit_is_its_maximum(tmp_path):
    """cluster.yaml's shape: a head with no CPUs for trials, CPU and GPU workers up to a cap."""
    config = {
        "max_workers": 5,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}, "max_workers": 0},
            "cpu": {"resources": {"CPU": 8}, "min_workers": 0, "max_workers": 4},
            "gpu": {"resources": {"CPU": 8, "GPU": 1}, "min_workers": 0, "max_workers": 2},
        },
    }
    path = tmp_path / "ray_bootstrap_config.yaml"
    path.write_text(yaml.safe_dump(config))
    autoscaling = bootstrap_autoscaling(path)
    nothing_up = ClusterInfo("127.0.0.1:6379", cpus=0, gpus=0, nodes=1, node_resources=((0, 0),))
    # 5 workers at most: 8 slots each at 1 CPU per trial.
    assert max_concurrent(_settings(cpus_per_trial=1), nothing_up, autoscaling) == 40
    # GPU trials fit only on the 2 GPU workers, 4 a GPU at 0.25.
    assert max_concurrent(_settings(gpus_per_trial=0.25), nothing_up, autoscaling) == 8
    assert autoscaling.node_type_with("CPU", 2) == "cpu"
    assert autoscaling.node_type_with("GPU", 2) is None
    assert bootstrap_autoscaling(tmp_path / "missing.yaml") is None


def test_a_search_that_cannot_fit_is_refused_with_the_fix(capsys, tmp_path):
    no_cpus = ClusterInfo("127.0.0.1:6379", cpus=0, gpus=0, nodes=1, node_resources=((0, 0),))
    # No node types to read: nodes may still come, and --max-concurrent is how to wait for them.
    with pytest.raises(UsageError, match="--cpus-per-trial 1: the cluster has no CPUs up yet and "
                       "no node types poptune can read; pass --max-concurrent K"):  # fmt: skip
        check_fits(_settings(), no_cpus)
    check_fits(_settings(max_concurrent=2), no_cpus)
    assert "the trials wait for the nodes its autoscaler adds" in capsys.readouterr().err
    machine = ClusterInfo(None, cpus=2, gpus=0, nodes=1)
    with pytest.raises(UsageError, match=r"this machine has only 2 CPU.*--address"):
        check_fits(_settings(cpus_per_trial=4), machine)
    with pytest.raises(UsageError, match="--max-concurrent 3: this machine fits only 2 trial"):
        check_fits(_settings(max_concurrent=3), machine)
    with pytest.raises(UsageError, match=r"--gpus-per-trial 0\.5: this machine has 0 GPU"):
        check_fits(_settings(gpus_per_trial=0.5), machine)
    check_fits(_settings(max_concurrent=2), machine)
    # The nodes an autoscaler can add count: the search starts and says what will come up.
    path = tmp_path / "ray_bootstrap_config.yaml"
    path.write_text(yaml.safe_dump({
        "max_workers": 2, "head_node_type": "head",
        "available_node_types": {"head": {"resources": {"CPU": 0}},
                                 "cpu_worker": {"resources": {"CPU": 2}, "max_workers": 2}},
    }))  # fmt: skip
    check_fits(_settings(), no_cpus, bootstrap_autoscaling(path))
    assert "the autoscaler starts cpu_worker nodes" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--cpus-per-trial 4: the cluster has only 0"):
        check_fits(_settings(cpus_per_trial=4), no_cpus, bootstrap_autoscaling(path))
