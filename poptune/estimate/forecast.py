"""`poptune estimate`: the wall time a search will take, predicted before it runs.

Three measurements and a simulation:

1. what an epoch costs, per config (`epoch_cost`): a per-step cost model timed in this process,
   priced over configs drawn from the search space;
2. how fast the cluster runs it, and Tune's own costs: one short calibration search on the
   cluster, through `run_search` itself (a few trials of 3 epochs on a slice of the rows),
   timed by `poptune.estimate.clock`: the first trial's start, the gaps between epochs and
   between trials, and the cluster's epoch time against the cost model's;
3. the slots: the trials the cluster's nodes hold at once, counted as the search counts them
   (`poptune.cluster.capacity.trial_slots`), capped by --max-concurrent;
4. the schedule (`schedule`): trials played out over the slots, ASHA's stops included.

Assumptions, said where they are made: TPE's later, focused samples cost what the prior's do; a
trial's speed does not tell whether ASHA keeps it; a trial ranks the same at every rung.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poptune import uri
from poptune.cluster import capacity
from poptune.cluster.capacity import ClusterInfo
from poptune.data import Prepared
from poptune.driver.settings import SearchSettings
from poptune.estimate.epoch_cost import EpochCostModel, calibrate_locally, sample_space
from poptune.estimate.simulation import SlotCosts, simulate_search
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


def calibrate_on_cluster(
    settings: SearchSettings, prepared: Prepared, model: EpochCostModel
) -> Calibration:
    """One short search through `run_search` itself, timed by a SearchClock."""
    from poptune.driver.runner import run_search
    from poptune.estimate.clock import SearchClock

    # A few slots show the overheads; a local machine may have fewer than that. A cluster's
    # size is known only once joined: there the calibration asks for the few regardless.
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        probe = min(settings.max_concurrent or math.inf, settings.num_samples)
    else:
        import torch

        machine = ClusterInfo(None, os.cpu_count() or 1, torch.cuda.device_count(), nodes=1)
        probe = capacity.trial_slots(settings, machine)
    probe = int(min(probe, MAX_CALIBRATION_SLOTS))
    rows = min(CALIBRATION_ROWS, len(prepared.x_train))
    small = dataclasses.replace(
        prepared, x_train=prepared.x_train[:rows], y_train=prepared.y_train[:rows]
    )
    clock = SearchClock(address=address)
    with calibration_storage(settings) as storage:
        calibration = dataclasses.replace(
            settings,
            num_samples=probe + 1,  # the last one shows a reused worker's gap between trials
            max_epochs=CALIBRATION_EPOCHS,
            scheduler="fifo",
            max_concurrent=probe,
            storage=storage,
            name=f"{settings.name}-calibration",
            study_storage=None,
            resume=False,
            retry_errored=False,
            force=False,  # a fresh folder: nothing there to replace
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
        slots=capacity.trial_slots(settings, clock.cluster, clock.autoscaling),
    )


@contextmanager
def calibration_storage(settings: SearchSettings) -> Iterator[str]:
    """A fresh, empty storage for the calibration search, removed with all it holds afterwards:
    the user's experiments are never written to, replaced or deleted.

    With local storage, a temporary folder on this machine. With remote storage, a prefix of
    its own beside the user's experiments, under a random name nothing of theirs has: trials on
    other machines write their checkpoints into the storage themselves, and Ray fails every
    trial that cannot reach it (as a folder on this machine cannot), so a local folder would
    end the calibration on any cluster of more than one machine."""
    if settings.storage_is_local:
        with tempfile.TemporaryDirectory(prefix="poptune-estimate-") as tmp:
            yield str(Path(tmp) / "runs")
        return
    from poptune.storage.location import ExperimentLocation

    prefix = uri.join(settings.storage_uri, f".poptune-estimate-{secrets.token_hex(8)}")
    try:
        yield prefix
    finally:
        ExperimentLocation(prefix).delete()


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
