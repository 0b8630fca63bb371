"""Ray Tune's private state that poptune's subclasses and callbacks extend: OptunaSearch's,
the JSON and CSV loggers' restore, MLflowLoggerCallback's, and what Tune's driver keeps of a
finished trial (see :mod:`poptune.compat.ray_compat`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.fs
import ray

from poptune.compat.ray_compat import INSTALL_TESTED, missing, private_paths, written_for

if TYPE_CHECKING:
    import optuna


# -- Ray Tune's OptunaSearch ------------------------------------------------------------------


class FastDefineByRun:
    """Mixin, before Ray's ``OptunaSearch`` in a subclass's bases: a define-by-run space's
    suggestion read off the Optuna trial.

    Ray hands the space a proxy that wraps every ``suggest_*`` call to note its value, at the
    cost of an ``inspect.signature`` each (a twentieth of a suggestion); the trial notes them
    itself. The method overridden is Ray's private one: outside the Ray it was written for,
    Ray's own runs (and if Ray no longer has the method, nothing calls this one)."""

    def _suggest_from_define_by_run_func(self, func: Callable, ot_trial: optuna.Trial) -> dict:
        fallback = (
            "each suggestion goes through Ray's capturing proxy (the same configs, about 5% "
            "slower a suggestion)"
        )
        if not private_paths("suggest", fallback):
            return super()._suggest_from_define_by_run_func(func, ot_trial)  # type: ignore[misc]
        returned = func(ot_trial)
        return {**ot_trial.params, **(returned or {})}


# -- Ray Tune's JSON and CSV loggers (driver/trial_logs.py) -----------------------------------

_LOGS_FALLBACK = (
    "a trial restarted from its checkpoint may lose the result rows (result.json, progress.csv) "
    "it logged since the experiment was last synced"
)


class LiveLogsFirst:
    """Mixin, before Tune's ``JsonLoggerCallback`` or ``CSVLoggerCallback`` in a subclass's
    bases: a trial restarted from its checkpoint keeps the rows the driver logged for it.

    When a trial starts again with a checkpoint, Tune copies the storage's copy of the trial's
    log over the driver's own, so that a driver resumed elsewhere goes on from the rows saved.
    In a running search the driver's copy is the one Tune syncs to storage, so it is the longer:
    the copy over it drops every row logged since the last sync (seen losing a restarted trial's
    last 4 epochs when a node was lost). This copies only where the driver's file is missing or
    shorter. The method overridden is Tune's private one: outside the Ray it was written for,
    Tune's own runs (and if Tune no longer has the method, nothing calls this one)."""

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        restore = super()._restore_from_remote  # type: ignore[misc]
        if not private_paths("trial logs", _LOGS_FALLBACK):
            return restore(file_name, trial)
        try:
            local = Path(trial.local_path, file_name)
            remote = Path(trial.storage.trial_fs_path, file_name).as_posix()
            filesystem = trial.storage.storage_filesystem
        except AttributeError as exc:
            missing("trial logs", exc, _LOGS_FALLBACK)
            return restore(file_name, trial)
        if local.is_file() and local.stat().st_size >= _size(filesystem, remote):
            return None
        return restore(file_name, trial)


def _size(filesystem: pyarrow.fs.FileSystem, path: str) -> int:
    """The size of the file at ``path``, 0 where there is none."""
    info = filesystem.get_file_info(path)
    return info.size if info.type == pyarrow.fs.FileType.File else 0


# The state below has no public accessor in Ray: poptune's subclasses extend what Ray's classes
# keep there. So these read the attributes on any Ray, and where one is gone (a later Ray that
# renamed it) fail with an error naming the Ray and the way back, not a bare AttributeError.


def _attribute(obj: object, name: str, owner: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise RuntimeError(
            f"Ray {ray.__version__}'s {owner} keeps no {name}, which poptune reads (written "
            f"for Ray {written_for()}); install the tested Ray: {INSTALL_TESTED}"
        ) from None


def optuna_study_of(searcher: object) -> optuna.Study:
    """The Optuna study a Ray ``OptunaSearch`` asks and tells."""
    return _attribute(searcher, "_ot_study", "OptunaSearch")


def optuna_trials_of(searcher: object) -> dict[str, optuna.Trial]:
    """A Ray ``OptunaSearch``'s Optuna trial of each Tune trial id (the searcher's own dict)."""
    return _attribute(searcher, "_ot_trials", "OptunaSearch")


def completed_trials_of(searcher: object) -> set[str]:
    """The Tune trial ids a Ray ``OptunaSearch`` has told the study the outcome of (its own
    set: adding to it is how a subclass records one)."""
    return _attribute(searcher, "_completed_trials", "OptunaSearch")


def saved_optuna_study(state: object) -> Any | None:
    """The study in a Ray ``OptunaSearch``'s saved state (Tune's ``searcher-state-*.pkl``,
    unpickled: the searcher's attributes as a dict), or None for a state of another form."""
    if not isinstance(state, dict):
        return None
    if "_ot_study" not in state:
        raise RuntimeError(
            f"Ray {ray.__version__}'s saved OptunaSearch state holds no _ot_study, which poptune "
            f"reads (written for Ray {written_for()}); install the tested Ray: {INSTALL_TESTED}"
        )
    return state["_ot_study"]


# -- Ray Tune's MLflowLoggerCallback ----------------------------------------------------------


def trial_runs_of(callback: object) -> dict[Any, str]:
    """A Ray ``MLflowLoggerCallback``'s MLflow run id of each trial (its own dict: what its
    ``log_trial_end`` ends)."""
    return _attribute(callback, "_trial_runs", "MLflowLoggerCallback")


# -- what Tune keeps of a finished trial (driver/finished.py) ---------------------------------
# Added for the driver's memory in a long search; independent of the sections above.

_FINISHED_FALLBACK = (
    "Tune keeps each finished trial's per-metric running windows and every checkpoint's result "
    "in the driver's memory (tens of KB a trial: the driver grows with a long search)"
)


def trim_finished_trial(trial: Any, keep_metrics: Collection[str]) -> bool:
    """Let go of what Tune's driver keeps of a trial that has finished and nothing reads again;
    True when it was trimmed. Called from ``on_trial_complete`` (never for an errored trial,
    which ``--retry-errored`` may run on):

    - the running windows (two deques per numeric metric) behind the ``last-5-avg`` and
      ``last-10-avg`` of its metric summaries: those averages stay, and a finished trial reports
      nothing more to average;
    - the summaries (``min``, ``max``, ``avg``, ``last``, ``last-N-avg``) of every metric but
      ``keep_metrics`` (``ExperimentAnalysis.get_best_trial`` reads those of the metric it is
      asked about; its ``last_result`` keeps every metric's last value);
    - the results of its checkpoints but the newest (the one Tune's ``Result.checkpoint`` and a
      restore use). Their files stay until the search ends, which then keeps only the newest;
    - the reference to the auto-filled metrics its actor was asked for when the trial started,
      which Tune reads only for a trial that never reported (its last result stands in for them
      otherwise): held, it keeps the task's return value and bookkeeping in Ray's core worker,
      outside Python's heap, for every trial of the search.

    Tune writes the trial's state again when it stops the trial, just after this call, so the
    experiment state saved after it is trimmed alike. Outside the Ray this was written for
    nothing is trimmed (one warning)."""
    if not private_paths("finished trials", _FINISHED_FALLBACK):
        return False
    try:
        metadata = trial.run_metadata
        summaries = metadata.metric_analysis
        manager = metadata.checkpoint_manager
        results = manager._checkpoint_results if manager is not None else []
        latest = manager._latest_checkpoint_result if manager is not None else None
        invalidate = metadata.invalidate_cache
        pending_default = trial._default_result_or_future
    except AttributeError as exc:
        missing("finished trials", exc, _FINISHED_FALLBACK)
        return False
    # New dicts, assigned: the metadata drops its cached JSON on assignment. The summaries'
    # keys are interned (Tune formats "last-5-avg" anew for every metric of every trial).
    metadata.metric_analysis = {
        name: {sys.intern(scope): value for scope, value in summary.items()}
        for name, summary in summaries.items()
        if name in keep_metrics
    }
    # The running windows of the kept metrics stay: Tune would update them if it ever saw
    # another result of the trial (two short deques each).
    metadata.metric_n_steps = {
        name: windows for name, windows in metadata.metric_n_steps.items() if name in keep_metrics
    }
    if manager is not None and len(results) > 1:
        manager._checkpoint_results = [latest] if latest in results else results[-1:]
    if isinstance(pending_default, ray.ObjectRef) and set(metadata.last_result) - {"trial_id"}:
        trial._default_result_or_future = None
    invalidate()
    return True


_FORGIVE_FALLBACK = (
    "a trial failure caused by a full disk counts against the trial's --max-failures"
)


def forgive_failure(trial: Any) -> None:
    """Take one failure off ``trial``'s count (a failure that was no fault of the trial's, as a
    full disk): Tune keeps the count in the trial's private run metadata."""
    if not private_paths("failure count", _FORGIVE_FALLBACK):
        return
    try:
        metadata = trial.run_metadata
        metadata.num_failures = max(0, metadata.num_failures - 1)
        metadata.invalidate_cache()
    except AttributeError as exc:
        missing("failure count", exc, _FORGIVE_FALLBACK)


def checkpoint_results_of(trial: Any) -> int:
    """How many checkpoint results Tune keeps in memory for ``trial`` (a measurement for
    benchmarks/_chaos_memory.py; 0 where this Ray keeps them elsewhere)."""
    manager = getattr(getattr(trial, "run_metadata", None), "checkpoint_manager", None)
    return len(getattr(manager, "_checkpoint_results", ()) or ())
