"""Ray's OptunaSearch, told the truth about each trial.

Ray's wrapper tells Optuna a trial's *last* value and calls every early-stopped trial complete.
TPE should learn from a trial's *best* epoch (that is the model analysis retrains), and a trial
ASHA stopped early is a pruned trial, recorded as such (with its last value) in the study.

Tune hands the result on which a trial stops (ASHA's verdict, or the last epoch) to
``on_trial_complete`` only, never to ``on_trial_result``; so that final epoch is folded in here,
or the study would miss it: a best that ignores the last epoch, a pruned value one epoch stale.
"""

from __future__ import annotations

from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from poptune.metric import METRIC


class PoptuneOptunaSearch(OptunaSearch):
    def __init__(self, *args, max_epochs: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._max_epochs = max_epochs
        self._best: dict[str, float] = {}
        self._last_step: dict[str, int] = {}
        self._told_in_study: set[str] = set()

    def restore(self, checkpoint_path: str) -> None:
        super().restore(checkpoint_path)
        # A driver killed after telling the study a trial's outcome, but before Tune next saved
        # its own state, comes back (--resume) with that trial unfinished: Tune runs it again
        # and Optuna refuses a second outcome. The study is the record, so those count as told.
        finished = {
            t.number for t in self._ot_study.get_trials(deepcopy=False) if t.state.is_finished()
        }
        self._told_in_study = {
            trial_id
            for trial_id, ot_trial in self._ot_trials.items()
            if ot_trial.number in finished and trial_id not in self._completed_trials
        }

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._told_in_study:
            return
        self._track(trial_id, result)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        if trial_id in self._told_in_study:
            self._best.pop(trial_id, None)
            self._last_step.pop(trial_id, None)
            self._completed_trials.add(trial_id)
            return None
        ot_trial = self._ot_trials[trial_id]
        if result and not error:
            self._report_final(trial_id, result)
        best = self._best.pop(trial_id, None)
        self._last_step.pop(trial_id, None)
        if error or best is None:
            self._ot_study.tell(ot_trial, None, state=TrialState.FAIL)
        elif (
            result
            and not result.get("diverged")
            and result.get(TRAINING_ITERATION, 0) < self._max_epochs
        ):
            # Stopped by the scheduler: Optuna takes the last reported value for a pruned trial.
            self._ot_study.tell(ot_trial, None, state=TrialState.PRUNED)
        else:
            self._ot_study.tell(ot_trial, best, state=TrialState.COMPLETE)
        self._completed_trials.add(trial_id)

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
        self._ot_trials[trial_id].report(result[METRIC], step)
