"""`poptune estimate`: the wall time a search will take, predicted before it runs.

Three measurements and a simulation:

1. what an epoch costs, per config (`epoch_cost`): a per-step cost model timed in this process,
   priced over configs drawn from the search space;
2. how fast the cluster runs it, and Tune's own costs: one short calibration search on the
   cluster, through `run_search` itself (a few trials of 3 epochs on a slice of the rows),
   timed by `poptune.estimate.clock`: the first trial's start, the gaps between epochs and
   between trials, and the cluster's epoch time against the cost model's;
3. the slots: the cluster's CPUs (and GPUs) over a trial's, capped by --max-concurrent;
4. the schedule (`schedule`): trials played out over the slots, ASHA's stops included.

Assumptions, said where they are made: TPE's later, focused samples cost what the prior's do; a
trial's speed does not tell whether ASHA keeps it; a trial ranks the same at every rung.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poptune.data import Prepared
from poptune.estimate.epoch_cost import EpochCostModel, calibrate_locally, sample_space
from poptune.estimate.schedule import SlotCosts, simulate_search
from poptune.search.settings import SearchSettings
from poptune.trainables.config import REFERENCE, ModelConfig

SPACE_SAMPLES = 4000
# With --time-budget, the schedule of this many trials gives the mean cost of one.
BUDGET_SIMULATED_TRIALS = 200
CALIBRATION_EPOCHS = 3
CALIBRATION_ROWS = 40_960  # training rows a calibration trial sees: short epochs, real steps
MAX_CALIBRATION_SLOTS = 4


@dataclass(frozen=True)
class Calibration:
    """What the calibration search measured on the cluster."""

    costs: SlotCosts
    speed: float  # the cluster's epoch time over this process's cost model of it
    ray_start: float  # Ray start and shutdown around the search
    slots: int


@dataclass(frozen=True)
class Estimate:
    wall_s: float  # the search itself, as `poptune search` reports it
    ray_start_s: float
    trials: int
    trial_epochs: float
    mean_epoch_s: float
    slots: int
    first_trial_s: float
    busy_share: float  # predicted Σ training / (wall × slots)

    def summary(self) -> str:
        return (
            f"about {_duration(self.wall_s)} for the search (+{self.ray_start_s:.0f} s to start "
            f"and stop Ray): {self.trials} trials, {self.trial_epochs:.0f} epochs expected in "
            f"all, {self.mean_epoch_s:.2f} s per epoch on average, {self.slots} at a time; "
            f"{self.first_trial_s:.1f} s before the first epoch starts; slots busy "
            f"{self.busy_share:.0%} of the time"
        )


def predict_search(
    settings: SearchSettings,
    model: EpochCostModel,
    calibration: Calibration,
    *,
    train_rows: int,
    val_rows: int,
) -> Estimate:
    """The search of ``settings`` on data of this size, on the calibrated cluster."""
    pool = [
        model.epoch_s(c, train_rows, val_rows) * calibration.speed
        for c in sample_space(SPACE_SAMPLES, settings.seed)
    ]
    first = model.epoch_s(REFERENCE, train_rows, val_rows) * calibration.speed
    simulated_trials = settings.num_samples
    if settings.time_budget is not None:
        simulated_trials = min(simulated_trials, BUDGET_SIMULATED_TRIALS)
    slots = max(1, min(calibration.slots, simulated_trials))
    simulated = simulate_search(
        simulated_trials,
        slots=slots,
        max_epochs=settings.max_epochs,
        scheduler=settings.scheduler,
        grace_period=settings.grace_period,
        epoch_pool=pool,
        first_epoch_s=first,
        costs=calibration.costs,
        seed=settings.seed,
    )
    wall_s, trials = simulated.wall_s, settings.num_samples
    if settings.time_budget is not None:
        # Slots keep starting trials until the budget is spent, then the running ones finish:
        # on average half a trial more (a trial in flight is, on average, half done).
        per_trial = simulated.wall_s * slots / simulated_trials
        budgeted_wall = settings.time_budget + per_trial / 2
        budgeted_trials = math.ceil(settings.time_budget * slots / per_trial)
        if budgeted_trials < settings.num_samples:
            wall_s, trials = budgeted_wall, budgeted_trials
    return Estimate(
        wall_s=wall_s,
        ray_start_s=calibration.ray_start,
        trials=trials,
        trial_epochs=simulated.trial_epochs,
        mean_epoch_s=simulated.busy_s / simulated.trial_epochs,
        slots=slots,
        first_trial_s=calibration.costs.first_trial,
        busy_share=simulated.busy_s / (simulated.wall_s * slots),
    )


def trial_slots(settings: SearchSettings, cpus: float, gpus: float) -> int:
    """Trials that run at once on a cluster of ``cpus`` and ``gpus``."""
    at_once = cpus / settings.cpus_per_trial
    if settings.gpus_per_trial > 0:
        at_once = min(at_once, gpus / settings.gpus_per_trial)
    at_once = min(at_once, settings.max_concurrent or math.inf, settings.num_samples)
    return max(1, math.floor(at_once))


def calibrate_on_cluster(
    settings: SearchSettings, prepared: Prepared, model: EpochCostModel
) -> Calibration:
    """One short search through `run_search` itself, timed by a SearchClock."""
    from poptune.estimate.clock import SearchClock
    from poptune.search.runner import run_search

    # A few slots show the overheads; a local machine may have fewer than that.
    if settings.address or os.environ.get("RAY_ADDRESS"):
        probe = min(trial_slots(settings, math.inf, math.inf), MAX_CALIBRATION_SLOTS)
    else:
        import torch

        cpus, gpus = os.cpu_count() or 1, torch.cuda.device_count()
        probe = min(trial_slots(settings, cpus, gpus), MAX_CALIBRATION_SLOTS)
    rows = min(CALIBRATION_ROWS, len(prepared.x_train))
    small = dataclasses.replace(
        prepared, x_train=prepared.x_train[:rows], y_train=prepared.y_train[:rows]
    )
    clock = SearchClock()
    with tempfile.TemporaryDirectory(prefix="poptune-estimate-") as tmp:
        calibration = dataclasses.replace(
            settings,
            num_samples=probe + 1,  # the last one shows a reused worker's gap between trials
            max_epochs=CALIBRATION_EPOCHS,
            scheduler="fifo",
            max_concurrent=probe,
            storage=str(Path(tmp) / "runs") if settings.storage_is_local else settings.storage,
            name=f"{settings.name}-calibration",
            study_storage=None,
            resume=False,
            retry_errored=False,
            force=True,
        )
        started = time.perf_counter()
        outcome = run_search(calibration, small, callbacks=[clock])
        call_s = time.perf_counter() - started
    gaps = clock.summary()
    last_epoch = max(e.at for e in clock.epochs) - clock.started
    predicted = {
        t: model.epoch_s(ModelConfig.from_dict(c), len(small.x_train), len(small.x_val))
        for t, c in clock.configs.items()
    }
    # Later epochs only: a fresh worker's first epoch also pays one-off warm-up costs.
    ratios = [e.seconds / predicted[e.trial_id] for e in clock.epochs if e.epoch > 1]
    return Calibration(
        costs=SlotCosts(
            first_trial=gaps["first_trial"],
            between_epochs=gaps["between_epochs"],
            between_trials=gaps["between_trials"],
            finish=max(0.0, outcome.wall_s - last_epoch),
        ),
        speed=float(np.median(ratios)) if ratios else 1.0,
        ray_start=call_s - outcome.wall_s,
        slots=trial_slots(settings, clock.cluster_cpus, clock.cluster_gpus),
    )


def estimate_search(settings: SearchSettings, prepared: Prepared) -> Estimate:
    """Calibrate (here and on the cluster) and predict the wall time of ``settings``'s search."""
    model = calibrate_locally(prepared, threads=max(1, int(settings.cpus_per_trial)))
    calibration = calibrate_on_cluster(settings, prepared, model)
    rows = {"train_rows": len(prepared.x_train), "val_rows": len(prepared.x_val)}
    return predict_search(settings, model, calibration, **rows)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
