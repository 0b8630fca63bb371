"""The Ray trainable: a dict from Tune in, `fit` in the middle, metrics and checkpoints out."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from ray import tune

from poptune.memory import return_freed_memory
from poptune.trainables.config import ModelConfig
from poptune.trainables.loop import EpochStats, TrainingState, fit
from poptune.trainables.splits import Splits

STATE_FILE = "training_state.pt"


@dataclass(frozen=True)
class TrialSettings:
    max_epochs: int
    seed: int
    threads: int
    use_gpu: bool
    # The search's time budget, as a wall-clock time (time.time(), comparable across nodes):
    # a trial still running then ends after the epoch it is in, as a finished trial with its
    # checkpoint and best epoch, so that the budget bounds the search's wall, not only its starts.
    deadline: float | None = None


class _BudgetSpent(Exception):
    """Raised after an epoch's report once the deadline has passed: ends `fit` early."""


def train_trial(config: dict, *, prepared: Splits, settings: TrialSettings) -> None:
    """Train one sampled config, reporting every epoch and checkpointing so it can resume."""
    model_config = ModelConfig.from_dict(config)
    resume_from = _load_checkpoint()
    if settings.use_gpu and not torch.cuda.is_available():
        raise RuntimeError("this trial reserved a GPU, but CUDA is not available on its node")
    device = "cuda" if settings.use_gpu else "cpu"
    context = ray.get_runtime_context()
    where = {
        "node_id": context.get_node_id(),
        "device": device,
        # The epoch this run of the trial started from: > 0 means it resumed from a checkpoint.
        "resumed_from_epoch": len(resume_from["history"]) if resume_from else 0,
    }

    def report(stats: EpochStats, state: Callable[[], TrainingState]) -> None:
        # The worker's clock at the epoch's end: with `seconds`, when the epoch ran, whatever
        # the delay before the driver sees the result (poptune.estimate.clock uses it).
        ended_at = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state(), Path(tmp) / STATE_FILE)
            tune.report(
                {**stats, **where, "ended_at": ended_at},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )
        # An epoch's freed temporaries (the shuffled copy, activations, the validation pass)
        # go back to the OS now, so the next epoch's do not stack on them (a few ms).
        return_freed_memory()
        if settings.deadline is not None and time.time() >= settings.deadline:
            raise _BudgetSpent

    try:
        fit(
            model_config,
            prepared,
            epochs=settings.max_epochs,
            seed=settings.seed,
            threads=settings.threads,
            device=device,
            on_epoch=report,
            resume_from=resume_from,
        )
    except _BudgetSpent:
        pass  # the epoch is reported and checkpointed: the trial ends here, finished
    finally:
        # Tune runs each trial on a new thread of the reused worker: without this, a worker's
        # memory grew by about 25 MB a trial (an epoch's shuffled copy, activations...).
        return_freed_memory()


def _load_checkpoint() -> TrainingState | None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as path:
        # weights_only: a checkpoint is data, never code to unpickle.
        return torch.load(Path(path) / STATE_FILE, weights_only=True)
