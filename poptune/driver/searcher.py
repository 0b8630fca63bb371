"""Ray's OptunaSearch, told the truth about each trial.

Ray's wrapper tells Optuna a trial's *last* value and calls every early-stopped trial complete.
TPE should learn from a trial's *best* epoch (that is the model analysis retrains), and a trial
ASHA stopped early is a pruned trial, recorded as such (with its last value) in the study.

With a time budget it also decides when the search has started enough trials: once the budget
is spent, ``suggest`` answers FINISHED, Tune starts no more trials and the running ones finish
(so the search overshoots by at most one trial's run). The time spent is carried through
save/restore, so a resumed search spends only what is left.

Tune hands the result on which a trial stops (ASHA's verdict, or the last epoch) to
``on_trial_complete`` only, never to ``on_trial_result``; so that final epoch is folded in here,
or the study would miss it: a best that ignores the last epoch, a pruned value one epoch stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from poptune.compat import optuna_compat, ray_tune_compat
from poptune.metric import METRIC
from poptune.studies.database import fast_commits
from poptune.studies.study_file import StudyFile

_UNSET = object()
# The study copy of the search this driver runs, while it runs: see study_copy_of_this_run().
_THIS_RUN: ContextVar[Any] = ContextVar("poptune_study_copy", default=_UNSET)


@contextmanager
def study_copy_of_this_run(study_file: StudyFile | None) -> Iterator[None]:
    """A searcher unpickled inside this block copies its study to ``study_file`` (None: no
    copy), not to the file it was saved with. Tune unpickles the searcher itself, inside
    ``Tuner.restore`` and ``fit``, and since its last save a resumed experiment may have been
    moved, renamed, or taken from local storage to a bucket or back. (Under Ray Client,
    ``ray://``, Tune does that in an actor on the cluster, out of this block's reach.)"""
    token = _THIS_RUN.set(study_file)
    try:
        yield
    finally:
        _THIS_RUN.reset(token)


# Ray's OptunaSearch keeps its study, its trials and the trials it has told in private
# attributes, which this subclass extends: they are reached through compat.ray_tune_compat, and a
# define-by-run suggestion is read off the trial there (FastDefineByRun).
class PoptuneOptunaSearch(ray_tune_compat.FastDefineByRun, OptunaSearch):
    # A class default too: a searcher unpickled from an experiment saved before it had one.
    _study_file: StudyFile | None = None

    def __init__(
        self,
        *args,
        max_epochs: int,
        time_budget_s: float | None = None,
        study_file: StudyFile | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_epochs = max_epochs
        self._study_file = study_file  # where an in-memory study is copied at each save
        self._best: dict[str, float] = {}
        self._last_step: dict[str, int] = {}
        self._told_in_study: set[str] = set()
        self._time_budget_s = time_budget_s
        self._spent_before_s = 0.0  # by earlier runs of this search (before a --resume)
        self._run_started: float | None = None  # this driver's clock, at its first suggest

    @property
    def spent_s(self) -> float:
        """Seconds this search has spent starting and running trials, over all its runs."""
        if self._run_started is None:
            return self._spent_before_s
        return self._spent_before_s + time.monotonic() - self._run_started

    @property
    def budget_spent(self) -> bool:
        return self._time_budget_s is not None and self.spent_s >= self._time_budget_s

    def suggest(self, trial_id: str):
        if self._run_started is None:
            self._run_started = time.monotonic()
        if self.budget_spent:
            return Searcher.FINISHED
        return super().suggest(trial_id)

    def save(self, checkpoint_path: str) -> None:
        # A monotonic clock means nothing in another process: fold this run's time into the
        # seconds spent (and restart the run's clock from now), and save no clock at all.
        if self._run_started is not None:
            now = time.monotonic()
            self._spent_before_s += now - self._run_started
            self._run_started = now
        run_started, self._run_started = self._run_started, None
        try:
            super().save(checkpoint_path)
        finally:
            self._run_started = run_started
        if self._study_file is not None:
            self._study_file.write(ray_tune_compat.optuna_study_of(self))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled with the Tuner (tuner.pkl) on --resume: used as is if no state was saved.
        self.__dict__.update(state)
        self._adopt_study_copy()

    def _adopt_study_copy(self) -> None:
        current = _THIS_RUN.get()
        if current is not _UNSET:
            self._study_file = current

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        self._adopt_study_copy()
        study = ray_tune_compat.optuna_study_of(self)
        # The study's storage comes back unpickled, with a new SQLite engine.
        backend = optuna_compat.rdb_storage_of(study)
        if backend is not None:
            fast_commits(backend)
        self._run_started = None  # this run's clock starts at its first suggest
        # A driver killed after telling the study a trial's outcome, but before Tune next saved
        # its own state, comes back (--resume) with that trial unfinished: Tune runs it again
        # and Optuna refuses a second outcome. The study is the record, so those count as told.
        finished = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        completed = ray_tune_compat.completed_trials_of(self)
        self._told_in_study = {
            trial_id
            for trial_id, ot_trial in ray_tune_compat.optuna_trials_of(self).items()
            if ot_trial.number in finished and trial_id not in completed
        }

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._told_in_study:
            return
        self._track(trial_id, result)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        completed = ray_tune_compat.completed_trials_of(self)
        ot_trials = ray_tune_compat.optuna_trials_of(self)
        if trial_id in completed or trial_id not in ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        if trial_id in self._told_in_study:
            self._best.pop(trial_id, None)
            self._last_step.pop(trial_id, None)
            completed.add(trial_id)
            ot_trials.pop(trial_id)
            return None
        ot_trial = ot_trials[trial_id]
        study = ray_tune_compat.optuna_study_of(self)
        if result and not error:
            self._report_final(trial_id, result)
        best = self._best.pop(trial_id, None)
        self._last_step.pop(trial_id, None)
        if error or best is None:
            study.tell(ot_trial, None, state=TrialState.FAIL)
        elif (
            result
            and not result.get("diverged")
            and result.get(TRAINING_ITERATION, 0) < self._max_epochs
        ):
            # Stopped by the scheduler: Optuna takes the last reported value for a pruned trial.
            study.tell(ot_trial, None, state=TrialState.PRUNED)
        else:
            study.tell(ot_trial, best, state=TrialState.COMPLETE)
        completed.add(trial_id)
        # Told: the study holds the trial now. Ray's searcher would keep its Optuna trial (a
        # copy of the study's, 3 KB) for every trial of the search, in memory and in each save.
        ot_trials.pop(trial_id)

    def _track(self, trial_id: str, result: dict) -> None:
        value = result.get(METRIC)
        if value is not None:
            self._best[trial_id] = min(value, self._best.get(trial_id, float("inf")))
            self._last_step[trial_id] = result.get(TRAINING_ITERATION, 0)

    def _report_final(self, trial_id: str, result: dict) -> None:
        """Record the stopping epoch as an intermediate value, unless it was already reported."""
        step = result.get(TRAINING_ITERATION)
        if result.get(METRIC) is None or step is None or step <= self._last_step.get(trial_id, 0):
            return
        self._track(trial_id, result)
        ray_tune_compat.optuna_trials_of(self)[trial_id].report(result[METRIC], step)
