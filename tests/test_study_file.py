"""StudyFile: the in-memory study of a search, copied into a SQLite file at each save."""

from __future__ import annotations

import pickle

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import event

from poptune.studies.study_file import StudyFile

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _view(study: optuna.Study) -> list[tuple]:
    return [
        (
            t.number,
            t.state,
            t.values,
            t.params,
            t.intermediate_values,
            t.datetime_start,
            t.datetime_complete,
            t.user_attrs,
            t.system_attrs,
            t.distributions,
        )
        for t in study.get_trials()
        if t.state != TrialState.WAITING
    ]


def _read(url: str) -> list[tuple]:
    return _view(optuna.load_study(study_name="s", storage=url))


def _ask(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    trial.set_user_attr("slot", trial.number % 3)
    trial.suggest_float("x", -1.0, 1.0)
    if trial.suggest_categorical("kind", ["a", "b"]) == "b":
        trial.suggest_int("width", 4, 64, log=True)
    return trial


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna_study.db'}"


def test_each_write_leaves_the_file_equal_to_the_study(url):
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"x": 0.5, "kind": "a"})  # a starting point, waiting to run
    copy = StudyFile(url, "s")
    copy.write(study)
    assert _read(url) == []  # a waiting trial is not shown until it runs

    running = [_ask(study) for _ in range(4)]
    running[0].report(3.0, step=1)
    copy.write(study)
    assert _read(url) == _view(study)
    assert [state for _, state, *_ in _read(url)] == [TrialState.RUNNING] * 4

    running[0].report(2.0, step=2)  # new epochs of a trial already in the file
    study.tell(running[0], 2.0)
    running[1].report(5.0, step=1)
    study.tell(running[1], None, state=TrialState.PRUNED)
    study.tell(running[2], None, state=TrialState.FAIL)
    finished_between = _ask(study)  # runs and finishes between two writes
    finished_between.report(1.5, step=1)
    study.tell(finished_between, 1.5)
    copy.write(study)
    stored = _read(url)
    assert [(n, state) for n, state, *_ in stored] == [
        (0, TrialState.COMPLETE),
        (1, TrialState.PRUNED),
        (2, TrialState.FAIL),
        (3, TrialState.RUNNING),
        (4, TrialState.COMPLETE),
    ]
    assert stored == _view(study)
    assert stored[0][4] == {1: 3.0, 2: 2.0} and stored[1][2] == [5.0]


def test_a_write_costs_what_changed_not_the_size_of_the_study(url):
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(150):
        study.tell(_ask(study), float(i))
    trial = _ask(study)
    copy = StudyFile(url, "s")
    copy.write(study)
    statements: list[str] = []
    event.listen(copy._storage.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    copy.write(study)
    nothing_new = len(statements)
    trial.report(0.5, step=1)
    copy.write(study)
    one_epoch = len(statements) - nothing_new
    assert nothing_new == 0
    assert 0 < one_epoch < 5  # one epoch of one trial: not 151 trials' worth


def test_new_trials_are_written_in_bulk_in_one_transaction(url):
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(150):
        trial = _ask(study)
        for step in range(1, 6):
            trial.report(float(i + step), step=step)
        study.tell(trial, float(i))
    copy = StudyFile(url, "s")
    copy.write(study)  # opens the file, creates its tables
    commits: list[int] = []
    statements: list[str] = []
    engine = copy._storage.engine
    event.listen(engine, "commit", lambda *a: commits.append(1))
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for i in range(150):
        trial = _ask(study)
        trial.report(1.0, step=1)
        study.tell(trial, float(i))
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 300
    assert len(commits) == 1
    assert len(statements) < 30  # 150 trials with 1,050 rows: inserted table by table


def test_a_write_that_fails_midway_leaves_the_file_as_it_was(url, monkeypatch, capsys):
    """All or nothing: here the rewrite after a resume fails after emptying the study."""
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(3):
        study.tell(_ask(study), float(i))
    StudyFile(url, "s").write(study)
    before = _read(url)
    restored = pickle.loads(pickle.dumps(StudyFile(url, "s")))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(restored, "_update", fail)
    restored.write(optuna.create_study(study_name="s"))
    assert "OSError: disk full" in capsys.readouterr().err
    assert _read(url) == before and len(before) == 3


def test_a_restored_copy_rewrites_a_file_that_is_ahead_of_its_study(url):
    """Resuming from an older saved state: the file shows trials the restored study does not
    have (they are run again); the first write after the restore makes the file agree."""
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    copy = StudyFile(url, "s")
    first = _ask(study)
    copy.write(study)
    saved_study, saved_copy = pickle.dumps(study), pickle.dumps(copy)  # the last saved state
    study.tell(first, 1.0)
    study.tell(_ask(study), 2.0)
    copy.write(study)  # the file got ahead of the saved state
    assert len(_read(url)) == 2

    restored, copy = pickle.loads(saved_study), pickle.loads(saved_copy)
    assert copy.url == url and copy._storage is None  # only where to write survives a save
    trial = restored.trials[0]
    restored.tell(trial.number, 7.0)
    copy.write(restored)
    assert _read(url) == _view(restored)
    assert [(n, state, values) for n, state, values, *_ in _read(url)] == [
        (0, TrialState.COMPLETE, [7.0])
    ]


def test_a_failed_write_warns_and_the_next_one_rewrites_the_file(tmp_path, capsys):
    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'optuna_study.db'}"
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    study.tell(_ask(study), 1.0)
    copy = StudyFile(url, "s")
    copy.write(study)  # the folder does not exist: SQLite cannot open the file
    err = capsys.readouterr().err
    assert "poptune: warning: could not write the Optuna study to" in err
    assert "will rewrite it at the next save" in err
    folder.mkdir()
    study.tell(_ask(study), 2.0)
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 2
