"""A study in a database (``--study-storage``) as one driver writes it: what a suggestion, an
epoch and an outcome cost.

Without ``--study-storage`` the study is in memory (``study_file.py``). With it, the search's
driver is still the only writer, and it writes a lot: each suggestion is about 13 SQLite
transactions (the trial, each key, the constant liar's guesses), each epoch and each outcome one
more. Optuna's defaults make that cost more than TPE itself (measured, 32 running trials, 500
finished: 58 ms a suggestion against 13 ms for the same TPE in memory):

- **Commits wait for the disk.** Each one fsyncs (about 2 ms here). In write-ahead-log mode with
  ``synchronous=NORMAL`` a commit is a write into the log, synced at checkpoints. That trades
  nothing against a killed driver or Ctrl-C (committed transactions are in the log, which the
  next opener replays), only against an operating-system crash or power cut, which may lose the
  last commits (never corrupt the file): ``--resume`` then finds those trials unfinished. While
  the search runs the log sits beside the study (``optuna_study.db-wal``, ``-shm``); Optuna and
  optuna-dashboard read both.
- **Every read goes back to the database for every running trial**, because another process
  might have changed them: twice a suggestion (the waiting-trial check, TPE's view), each time
  loading the 32 running trials with all their keys, guesses and epochs.
  :class:`SingleWriterStorage` keeps Optuna's cache and reads back only the trials this driver
  wrote to since it last read them.

Either way, every trial's params come with their distributions, and Optuna makes a new one at
each ``suggest_*`` call (read back from the database: a new one per trial read), equal to the
last trial's: in a long search they were 1.4 KB of each trial the driver keeps. The driver's
storages keep one object per distinct distribution instead (:class:`SharedDistributions`);
distributions are values (Optuna compares them by their fields and never changes one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import FrozenTrial
from sqlalchemy import event

from poptune.compat import optuna_compat
from poptune.compat.optuna_compat import CachedStorage as _CachedStorage
from poptune.compat.optuna_compat import StudyInfo as _StudyInfo


def driver_study_storage(storage: optuna.storages.BaseStorage | None):
    """``storage`` as the search's driver should use it (see the module): None (no
    --study-storage) as an in-memory study keeping one object per distinct distribution;
    others as they are."""
    if storage is None:
        return InMemoryStudyStorage()
    if not isinstance(storage, optuna.storages.RDBStorage):
        return storage
    if not optuna_compat.fast_paths():
        return fast_commits(storage)
    return SingleWriterStorage(fast_commits(storage))


class SharedDistributions:
    """One object per distinct distribution: ``shared(d)`` is the first distribution seen equal
    to ``d`` (same class and fields, as Optuna writes it to JSON), or ``d`` itself."""

    def __init__(self) -> None:
        self._seen: dict[str, BaseDistribution] = {}

    def __call__(self, distribution: BaseDistribution) -> BaseDistribution:
        return self._seen.setdefault(distribution_to_json(distribution), distribution)

    def all_of(self, distributions: dict[str, BaseDistribution]) -> dict[str, BaseDistribution]:
        return {name: self(d) for name, d in distributions.items()}


class InMemoryStudyStorage(optuna.storages.InMemoryStorage):
    """Optuna's in-memory storage, its trials sharing their distributions (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self._shared = SharedDistributions()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_shared", SharedDistributions())

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        super().set_trial_param(
            trial_id, param_name, param_value_internal, self._shared(distribution)
        )


def fast_commits(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """A SQLite study's database in WAL mode with synchronous=NORMAL (a server database keeps
    its own settings)."""
    engine = storage.engine
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _pragmas):
        event.listen(engine, "connect", _pragmas)
        engine.dispose()  # connections opened before the listener reopen with it
    return storage


def _pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file; cheap to repeat
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
    finally:
        cursor.close()


def _then_reread(write: Callable[..., Any]) -> Callable[..., Any]:
    """``write`` (a method of Optuna's cached storage taking a trial id first), after which the
    trial's cached copy is stale."""

    @functools.wraps(write)
    def method(self: SingleWriterStorage, trial_id: int, *args: Any, **kwargs: Any) -> Any:
        try:
            return write(self, trial_id, *args, **kwargs)
        finally:
            self._stale(trial_id)

    return method


class SingleWriterStorage(_CachedStorage):
    """Optuna's cached RDB storage, trusting its copy of each unfinished trial until this
    process writes to that trial again (Optuna's own re-reads every unfinished trial on every
    read). Trials created elsewhere are still found (every read asks for newer trial ids)."""

    def __init__(self, backend: optuna.storages.RDBStorage) -> None:
        super().__init__(backend)
        self._current: set[int] = set()  # unfinished trials whose cached copy is up to date
        self._newest: dict[int, int] = {}  # study id -> the highest trial id read or made
        self._shared_distributions = SharedDistributions()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        # Unpickled (a resumed search): the driver that pickled it may have written after.
        super().__setstate__(state)
        self._current = set()
        self.__dict__.setdefault("_shared_distributions", SharedDistributions())
        self._newest = {
            study_id: max((t._trial_id for t in info.trials.values()), default=-1)
            for study_id, info in self._studies.items()
        }

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        with self._lock:
            info = self._studies[study_id]
            _, number = self._trial_id_to_study_id_and_number[trial_id]
            if not info.trials[number].state.is_finished():  # as the database returned it
                info.unfinished_trial_ids.add(trial_id)
                self._current.add(trial_id)
            self._newest[study_id] = max(self._newest.get(study_id, -1), trial_id)
        return trial_id

    # Every write to a trial: after it (even a refused one), the next read fetches it again.
    set_trial_param = _then_reread(_CachedStorage.set_trial_param)
    set_trial_state_values = _then_reread(_CachedStorage.set_trial_state_values)
    set_trial_intermediate_value = _then_reread(_CachedStorage.set_trial_intermediate_value)
    set_trial_user_attr = _then_reread(_CachedStorage.set_trial_user_attr)
    set_trial_system_attr = _then_reread(_CachedStorage.set_trial_system_attr)

    def _stale(self, trial_id: int) -> None:
        with self._lock:
            self._current.discard(trial_id)

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        with self._lock:
            info = self._studies.setdefault(study_id, _StudyInfo())
            trials = self._backend._get_trials(
                study_id,
                states=None,
                included_trial_ids=info.unfinished_trial_ids - self._current,
                trial_id_greater_than=self._newest.get(study_id, -1),
            )
            if not trials:
                return
            for trial in trials:  # read from the database: each with distributions of its own
                trial.distributions = self._shared_distributions.all_of(trial.distributions)
            self._add_trials_to_cache(study_id, trials)
            for trial in trials:
                trial_id = trial._trial_id
                self._newest[study_id] = max(self._newest.get(study_id, -1), trial_id)
                if trial.state.is_finished():
                    info.unfinished_trial_ids.discard(trial_id)
                    info.last_finished_trial_id = max(info.last_finished_trial_id, trial_id)
                    self._current.discard(trial_id)
                else:
                    info.unfinished_trial_ids.add(trial_id)
                    self._current.add(trial_id)
