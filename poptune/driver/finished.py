"""What the search's driver keeps of a finished trial: what is read again, and no more.

Tune keeps every trial of a search in its driver, and with each one, besides its config and
last result, a summary of every numeric metric it reported (min, max, mean, last, means of the
last 5 and 10), two running windows per metric behind those means, and the result of every
checkpoint it took; it keeps each trial's state as JSON text too, for the experiment state it
saves. None of that shrinks when a trial ends. Measured in the driver of a search of 2,000
surrogate trials (benchmarks/chaos.py's driver-memory search, smaller), per finished trial: the
windows 28 KB, the summaries 5 KB, the older checkpoints' results 2 KB, and Tune's JSON of all
that 15 KB more; a reference to a task result per trial besides, held in Ray's core worker.

:class:`FinishedTrials` lets go of those once a trial has finished (see
:func:`poptune.compat.ray_tune_compat.trim_finished_trial` for exactly what): the summaries of the
search's metric (``val_mse``) stay, so Ray's ``ExperimentAnalysis.get_best_trial`` and
``ResultGrid.get_best_result`` on it answer as before, and so do each trial's last result, its
newest checkpoint and everything on disk (``result.json``, ``progress.csv``, which
``poptune analyze`` reads). An errored trial is left as it is: ``--retry-errored`` may run it
again, and Tune would go on updating its summaries.

What the driver frees, glibc keeps for reuse, in the arena of the thread that freed it, and
Tune's driver frees a lot, of sizes that grow with the search: each save of the experiment
(every 10 s or more) writes every trial's state and the whole study again. Kept, that memory
grows the driver as surely as what it holds: measured as above, at 2,500 trials glibc's thread
arenas held 111 MB, 109 MB of it free. So at each save, once the trials, the searcher and the
callbacks before this one are written, the driver gives what is free back to the OS
(``malloc_trim``, 1 to 8 ms there, against a save's hundreds); the thread arenas then kept
10 to 16 MB resident.
"""

from __future__ import annotations

from collections.abc import Collection

from ray.tune import Callback

from poptune.compat import ray_tune_compat
from poptune.memory import return_freed_memory
from poptune.metric import METRIC


class FinishedTrials(Callback):
    """Trims what Tune keeps of each trial once it has finished (keeps the summaries of
    ``keep_metrics`` only), and gives freed memory back at each save of the experiment. After
    poptune's other callbacks, so that each of them sees the trial as Tune left it."""

    def __init__(self, keep_metrics: Collection[str] = (METRIC,)) -> None:
        self._keep = frozenset(keep_metrics)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        ray_tune_compat.trim_finished_trial(trial, self._keep)

    def get_state(self) -> None:
        # Tune asks every callback for its state at each save of the experiment, after writing
        # the trials and the searcher: the moment the driver has just freed the most. There is
        # no state to save.
        return_freed_memory()
