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
- a trial that finished after it was first copied is completed in place.

Each write is one transaction, its rows inserted in bulk, table by table, into Optuna's own
tables (the schema Optuna's RDB storage creates, and reads back). Through Optuna's storage API
every change was a transaction with its own look-ups: 15 ms of the driver's CPU a trial, in a
search of 2,000 trials written every 10 trials; in bulk, 0.5 ms. A write is all or nothing, so
a reader (optuna-dashboard) never sees half of one, nor, after a resume, the study emptied and
not yet written again.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import defaultdict
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from poptune.compat import optuna_compat
from poptune.compat.optuna_compat import rdb_models as models
from poptune.studies.database import fast_commits
from poptune.studies.rows import TRIAL_TABLES, TRIALS, add_rows, trial_row, utc


class StudyFile:
    """A SQLite (or any SQLAlchemy) copy of one in-memory study, brought up to date by
    :meth:`write`; cheap per call: each trial is written once, then only its new epochs and
    its outcome, all in one transaction."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        self._reset()

    def _reset(self) -> None:
        self._storage: optuna.storages.RDBStorage | None = None  # opened by the first write
        self._study_id = -1  # in the file; -1 until the first write replaces what it holds
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
                # Optuna's storage creates the tables (or checks their version) on opening.
                self._storage = fast_commits(optuna.storages.RDBStorage(self.url))
            if not optuna_compat.fast_paths():
                self._write_public(study)
                return
            session = self._storage.scoped_session()
            try:
                if self._study_id < 0:
                    self._study_id = self._replace_study(session, study)
                self._update(session, study.get_trials(deepcopy=False))
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self._storage.scoped_session.remove()
        except Exception as exc:  # a full disk, a locked or damaged file: the search goes on
            print(
                f"poptune: warning: could not write the Optuna study to {self.url} "
                f"({type(exc).__name__}: {exc}); will rewrite it at the next save",
                file=sys.stderr,
                flush=True,
            )
            if self._storage is not None:
                self._storage.engine.dispose()  # close the file: the next write reopens it
            self._reset()

    def _write_public(self, study: optuna.Study) -> None:
        """The whole study written again through Optuna's public API: several transactions
        and a look-up per row, so a reader may see it half written until the next save."""
        assert self._storage is not None
        with contextlib.suppress(KeyError):  # KeyError: not in the file yet
            optuna.delete_study(study_name=self.study_name, storage=self._storage)
        copy = optuna.create_study(
            storage=self._storage, study_name=self.study_name, directions=study.directions
        )
        trials = study.get_trials(deepcopy=False)
        copy.add_trials(t for t in trials if t.state != TrialState.WAITING)

    def _replace_study(self, session: Session, study: optuna.Study) -> int:
        """The file's study of this name, emptied (or made); its id."""
        row = models.StudyModel.find_by_name(self.study_name, session)
        if row is None:
            row = models.StudyModel(study_name=self.study_name)
            session.add(row)
        else:
            trial_ids = select(models.TrialModel.trial_id).where(
                models.TrialModel.study_id == row.study_id
            )
            for table in TRIAL_TABLES:
                session.execute(delete(table).where(table.trial_id.in_(trial_ids)))
            session.execute(
                delete(models.TrialModel).where(models.TrialModel.study_id == row.study_id)
            )
            session.execute(
                delete(models.StudyDirectionModel).where(
                    models.StudyDirectionModel.study_id == row.study_id
                )
            )
        session.flush()
        session.add_all(
            models.StudyDirectionModel(study_id=row.study_id, objective=i, direction=direction)
            for i, direction in enumerate(study.directions)
        )
        return row.study_id

    def _update(self, session: Session, trials: list[FrozenTrial]) -> None:
        rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)  # to insert, per table
        finished: list[dict[str, Any]] = []  # open trials that finished since the last write
        new = []
        for trial in trials:
            if trial.number in self._open:
                self._bring_up_to_date(trial, rows, finished)
            elif trial.number not in self._ids and trial.state != TrialState.WAITING:
                new.append(trial)  # (a waiting starting point is copied once it runs)
        if new:
            # This writer is the file's only one: the new trials are those numbered from the
            # lowest new number on (a single multi-row insert; no RETURNING, which SQLite
            # would answer row by row).
            session.execute(insert(TRIALS), [trial_row(trial, self._study_id) for trial in new])
            numbers = {trial.number for trial in new}
            inserted = session.execute(
                select(TRIALS.c.number, TRIALS.c.trial_id).where(
                    TRIALS.c.study_id == self._study_id, TRIALS.c.number >= min(numbers)
                )
            )
            self._ids.update((n, trial_id) for n, trial_id in inserted if n in numbers)
        for trial in new:
            add_rows(rows, self._ids[trial.number], trial, trial.params, trial.intermediate_values)
            for table, attrs in (
                (models.TrialUserAttributeModel.__table__, trial.user_attrs),
                (models.TrialSystemAttributeModel.__table__, trial.system_attrs),
            ):
                rows[table] += [
                    {"trial_id": self._ids[trial.number], "key": k, "value_json": json.dumps(v)}
                    for k, v in attrs.items()
                ]
            if not trial.state.is_finished():
                self._open[trial.number] = (set(trial.params), set(trial.intermediate_values))
        for table, table_rows in rows.items():
            session.execute(insert(table), table_rows)
        if finished:
            session.execute(
                update(TRIALS)
                .where(TRIALS.c.trial_id == bindparam("id"))
                .values(state=bindparam("state"), datetime_complete=bindparam("complete")),
                finished,
            )

    def _bring_up_to_date(
        self, trial: FrozenTrial, rows: dict[Table, list], finished: list[dict[str, Any]]
    ) -> None:
        trial_id = self._ids[trial.number]
        params, steps = self._open[trial.number]
        new_params = [name for name in trial.params if name not in params]
        new_steps = [step for step in trial.intermediate_values if step not in steps]
        add_rows(rows, trial_id, trial, new_params, new_steps)
        params.update(new_params)
        steps.update(new_steps)
        if trial.state.is_finished():
            finished.append(
                {"id": trial_id, "state": trial.state, "complete": utc(trial.datetime_complete)}
            )
            del self._open[trial.number]
