"""One line per finished trial instead of Tune's boxes: what ran, how it did, best so far."""

from __future__ import annotations

import sys
from typing import TextIO

from ray.tune import Callback

from poptune.driver import disk_full
from poptune.driver.settings import BUDGET_SAMPLE_CAP
from poptune.metric import METRIC

_DISK_FULL = "could not write to the experiment: the disk is full; stopping the search"


class TrialProgress(Callback):
    def __init__(self, num_samples: int, max_epochs: int, stream: TextIO | None = None) -> None:
        self._num_samples = num_samples
        self._max_epochs = max_epochs
        self._stream = stream
        self._best_of: dict[str, float] = {}
        self._overall: tuple[float, str] | None = None
        self._done: int | None = None  # trials finished, counted once from Tune's list

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = result.get(METRIC)
        if value is not None:
            self._best_of[trial.trial_id] = min(value, self._best_of.get(trial.trial_id, value))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        done = self._finished(trials, trial)
        best = self._best_of.pop(trial.trial_id, None)
        epochs = (trial.last_result or {}).get("training_iteration", 0)
        family = trial.config.get("family", "?")
        if best is not None and (self._overall is None or best < self._overall[0]):
            self._overall = (best, family)
        stopped = " (stopped early)" if epochs < self._max_epochs else ""
        so_far = f"{self._overall[0]:.3f} ({self._overall[1]})" if self._overall else "-"
        shown = f"{best:.3f}" if best is not None else "n/a"
        self._print(
            f"[{self._count(done)}] {trial.trial_id} {family:<18} "
            f"{epochs:>3} epoch(s){stopped:<16} best {METRIC} {shown:>9}   best so far {so_far}"
        )

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        done = self._finished(trials, trial)
        self._best_of.pop(trial.trial_id, None)
        if disk_full.trial_failed(trial, retried=False):
            self._print(f"[{self._count(done)}] {trial.trial_id} ERRORED: {_DISK_FULL}")
            return
        self._print(
            f"[{self._count(done)}] {trial.trial_id} ERRORED "
            f"(details: {trial.error_file or 'see the trial folder'})"
        )

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        # Here, in a callback of every search (a resumed one's too), since Tune restores a
        # search's callbacks from the experiment, not from the code that resumes it.
        if disk_full.trial_failed(trial, retried=True):
            self._print(f"      {trial.trial_id} {_DISK_FULL}")
            return
        self._print(f"      {trial.trial_id} failed and is being retried from its last checkpoint")

    def _finished(self, trials: list, trial) -> int:
        """Trials finished so far, this one included. Counted from Tune's list the first time
        (so that a resumed search goes on from where it was, not from 1), then kept: one
        search's callbacks cost the same at trial 5,000 as at trial 5."""
        if self._done is None:
            self._done = sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
        self._done += 1
        return self._done

    def _count(self, done: int) -> str:
        if self._num_samples >= BUDGET_SAMPLE_CAP:  # a time budget decides, not a count
            return f"{done:>3}"
        return f"{done:>3}/{self._num_samples}"

    def _print(self, line: str) -> None:
        # sys.stdout looked up at print time: a caller's redirect_stdout applies.
        print(line, file=self._stream or sys.stdout, flush=True)
