"""How long a search takes, by simulating its schedule: slots, trials, epochs, ASHA's stops.

A closed formula gets the tail wrong: under ASHA the trials that run longest are promoted late,
and while the last of them trains the other slots have nothing to do. So the schedule is played
out instead, event by event, as Tune runs it: every slot takes the next trial when it is free;
each epoch ends after the trial's epoch time; at each rung Ray's ASHA rule decides (a trial
stops if its result is below the (1 - 1/rf) percentile of the results recorded at that rung so
far; the first to arrive always continues). Trials get a random quality that ranks them the same
at every rung, and an epoch time drawn from a pool (the search space's prior); the result is
the mean over many such draws.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ASHA_REDUCTION_FACTOR = 3  # runner.py's ASHAScheduler(reduction_factor=...)


@dataclass(frozen=True)
class SlotCosts:
    """Where a slot's time goes besides epochs, in seconds (`poptune.estimate.clock` measures
    them): before its first epoch, between a trial's epochs, between trials, and from the last
    epoch to the end of the search."""

    first_trial: float = 0.0
    between_epochs: float = 0.0
    between_trials: float = 0.0
    finish: float = 0.0


@dataclass(frozen=True)
class Simulated:
    wall_s: float
    trial_epochs: float
    busy_s: float  # Σ epoch seconds


def asha_milestones(max_t: int, grace_period: int, rf: float = ASHA_REDUCTION_FACTOR) -> list[int]:
    """The rungs where Ray's ASHA may stop a trial, below max_t (its `_Bracket`, one bracket)."""
    rungs = int(np.log(max_t / grace_period) / np.log(rf) + 1)
    milestones = sorted(int(grace_period * rf**k) for k in range(rungs))
    return [m for m in milestones if m < max_t]


def simulate_search(
    num_samples: int,
    *,
    slots: int,
    max_epochs: int,
    scheduler: str,
    grace_period: int,
    epoch_pool: Sequence[float],
    first_epoch_s: float | None = None,
    costs: SlotCosts = SlotCosts(),
    rf: float = ASHA_REDUCTION_FACTOR,
    runs: int | None = None,
    seed: int = 0,
) -> Simulated:
    """Mean wall time, epochs and busy time of a search, over ``runs`` simulated schedules.

    Each trial's epoch time is drawn from ``epoch_pool``; the first trial's is ``first_epoch_s``
    when given (a poptune search always starts with the reference model).
    """
    milestones = asha_milestones(max_epochs, min(grace_period, max_epochs), rf)
    if scheduler != "asha":
        milestones = []
    rng = np.random.default_rng(seed)
    pool = np.asarray(epoch_pool, dtype=np.float64)
    runs = runs or max(50, 10_000 // num_samples)
    walls, epochs, busy = [], [], []
    for _ in range(runs):
        times = rng.choice(pool, size=num_samples)
        if first_epoch_s is not None:
            times[0] = first_epoch_s
        result = _one_schedule(
            times, rng.standard_normal(num_samples), slots, max_epochs, milestones, costs, rf
        )
        walls.append(result.wall_s)
        epochs.append(result.trial_epochs)
        busy.append(result.busy_s)
    return Simulated(float(np.mean(walls)), float(np.mean(epochs)), float(np.mean(busy)))


def _one_schedule(
    epoch_s: np.ndarray,
    quality: np.ndarray,
    slots: int,
    max_epochs: int,
    milestones: list[int],
    costs: SlotCosts,
    rf: float,
) -> Simulated:
    recorded: dict[int, list[float]] = {m: [] for m in milestones}  # sorted, higher is better
    events: list[tuple[float, int, int]] = []  # (time the epoch ends, trial, epoch)
    started = min(slots, len(epoch_s))
    for trial in range(started):
        heapq.heappush(events, (costs.first_trial + epoch_s[trial], trial, 1))
    wall = busy = 0.0
    epochs = 0
    while events:
        now, trial, epoch = heapq.heappop(events)
        busy += epoch_s[trial]
        epochs += 1
        stop = epoch >= max_epochs
        if epoch in recorded:
            cutoff = _percentile(recorded[epoch], 1 - 1 / rf)
            bisect.insort(recorded[epoch], quality[trial])  # Ray records it whatever it decides
            stop = stop or (cutoff is not None and quality[trial] < cutoff)
        if not stop:
            heapq.heappush(events, (now + costs.between_epochs + epoch_s[trial], trial, epoch + 1))
        elif started < len(epoch_s):  # this slot takes the next trial
            heapq.heappush(events, (now + costs.between_trials + epoch_s[started], started, 1))
            started += 1
        wall = max(wall, now)
    return Simulated(wall + costs.finish, float(epochs), busy)


def _percentile(ordered: list[float], q: float) -> float | None:
    """numpy's default (linear) percentile of an already sorted list; None if empty."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    if low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[low + 1] - ordered[low])
