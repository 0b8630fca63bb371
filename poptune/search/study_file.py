"""The search's Optuna study: in memory while the search runs, copied into optuna_study.db.

A suggestion against a SQLite study costs about three times what TPE itself costs (about 13
transactions for the trial, its keys and the constant liar's guesses; measured, 2,000 trials:
44 ms a trial against 16 in memory), and the driver that pays it is the one handing out trials.
So the searcher keeps its study in memory, and :class:`StudyFile` copies it into the experiment's
``optuna_study.db`` each time Tune saves the searcher's state (every 10 s or more, and when the
search ends or is interrupted). The copy is a view, not the record: ``--resume`` restores the
study from the saved searcher state, and the first copy after a restore rewrites the file from
it, so the file never disagrees with the study the search goes on with.

What the file holds:

- every trial, with the study's own numbers, params, per-epoch values and state, as of the last
  save: optuna-dashboard shows running trials too, at most one save behind;
- a trial that finished after it was first copied is completed in place, with the time of that
  copy as its end time (at most one save late).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from poptune.search.study import fast_commits


class StudyFile:
    """A SQLite (or any SQLAlchemy) copy of one in-memory study, brought up to date by
    :meth:`write`; cheap per call: each trial is created once and then only its new epochs and
    its outcome are written."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        self._reset()

    def _reset(self) -> None:
        self._storage: optuna.storages.RDBStorage | None = None  # opened by the first write
        self._study_id = -1
        self._ids: dict[int, int] = {}  # trial number -> trial id in the file
        # Unfinished in the file: number -> the params and epochs written so far.
        self._open: dict[int, tuple[set[str], set[int]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Saved with the searcher's state: only where to write. A restored copy rewrites the
        # file from the study it is restored with (the file may be ahead of that study).
        return {"url": self.url, "study_name": self.study_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def write(self, study: optuna.Study) -> None:
        """Bring the file up to date with ``study``. A failure is a warning, and the next write
        rewrites the file: the search's record is its saved state, not this copy."""
        try:
            if self._storage is None:
                self._create(study)
            self._update(study.get_trials(deepcopy=False))
        except Exception as exc:  # a full disk, a locked or damaged file: the search goes on
            print(
                f"poptune: warning: could not write the Optuna study to {self.url} "
                f"({type(exc).__name__}: {exc}); will rewrite it at the next save",
                file=sys.stderr,
                flush=True,
            )
            self._reset()

    def _create(self, study: optuna.Study) -> None:
        storage = fast_commits(optuna.storages.RDBStorage(self.url))
        with contextlib.suppress(KeyError):  # KeyError: a new search, nothing to replace
            optuna.delete_study(study_name=self.study_name, storage=storage)
        self._study_id = storage.create_new_study(study.directions, self.study_name)
        self._storage = storage

    def _update(self, trials: list[FrozenTrial]) -> None:
        storage = self._storage
        assert storage is not None
        for trial in trials:
            number = trial.number
            if trial.state == TrialState.WAITING:
                continue  # a starting point not started yet; copied once it runs
            if number not in self._ids:
                self._ids[number] = storage.create_new_trial(self._study_id, template_trial=trial)
                if not trial.state.is_finished():
                    self._open[number] = (set(trial.params), set(trial.intermediate_values))
            elif number in self._open:
                self._bring_up_to_date(number, trial)

    def _bring_up_to_date(self, number: int, trial: FrozenTrial) -> None:
        storage, trial_id = self._storage, self._ids[number]
        assert storage is not None
        params, steps = self._open[number]
        for name, value in trial.params.items():
            if name not in params:
                distribution = trial.distributions[name]
                storage.set_trial_param(
                    trial_id, name, distribution.to_internal_repr(value), distribution
                )
                params.add(name)
        for step, value in trial.intermediate_values.items():
            if step not in steps:
                storage.set_trial_intermediate_value(trial_id, step, value)
                steps.add(step)
        if trial.state.is_finished():
            storage.set_trial_state_values(trial_id, trial.state, trial.values)
            del self._open[number]
