"""Where a search's time goes, seen from the driver: a Tune callback that timestamps each epoch.

Each result carries the epoch's own duration measured inside `fit` (``seconds``) and the worker
process it ran in (Tune's ``pid``); with the driver's clock at arrival, that splits every slot's
time into training and the gaps around it: the first trial's start (worker process, imports,
data), the gap between a trial's epochs (report, checkpoint) and between the trials one reused
worker runs. `poptune estimate` calibrates with it; the benchmarks report with it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

from ray.tune import Callback

from poptune.cluster.autoscale import Autoscaling, find_autoscaling
from poptune.cluster.capacity import ClusterInfo
from poptune.cluster.session import joined_cluster

GAPS = ("first_trial", "between_epochs", "between_trials")


@dataclass(frozen=True)
class EpochTiming:
    trial_id: str
    epoch: int
    seconds: float  # inside fit: training and validation
    at: float  # when the epoch ended: the worker's clock, else the driver's at the result
    pid: int  # the worker process (one per slot while actors are reused)

    @property
    def began(self) -> float:
        return self.at - self.seconds


@dataclass
class SearchClock(Callback):
    started: float = 0.0
    address: str | None = None  # the cluster joined; None: a private local Ray
    # The cluster as the search found it, its nodes one by one, and what its autoscaler may
    # add: what the search's slots are counted from (poptune.cluster.capacity).
    cluster: ClusterInfo | None = None
    autoscaling: Autoscaling | None = None
    configs: dict[str, dict] = field(default_factory=dict)
    epochs: list[EpochTiming] = field(default_factory=list)

    def setup(self, **info) -> None:
        self.started = time.time()
        self.cluster = joined_cluster(self.address)
        self.autoscaling = None if self.cluster.local else find_autoscaling()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.configs[trial.trial_id] = dict(trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.epochs.append(
            EpochTiming(
                trial_id=trial.trial_id,
                epoch=int(result.get("epoch", result.get("training_iteration", 0))),
                seconds=float(result.get("seconds", 0.0)),
                at=float(result.get("ended_at", time.time())),
                pid=int(result.get("pid", 0)),
            )
        )

    @property
    def busy_s(self) -> float:
        return sum(e.seconds for e in self.epochs)

    def epochs_per_trial(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.epochs:
            counts[e.trial_id] = max(counts.get(e.trial_id, 0), e.epoch)
        return counts

    def gaps(self) -> dict[str, list[float]]:
        """Per slot, seconds from the search's start to its first epoch; between a trial's
        epochs; between one trial's last epoch and the next trial's first on that worker."""
        by_worker: dict[int, list[EpochTiming]] = defaultdict(list)
        for e in sorted(self.epochs, key=lambda e: e.at):
            by_worker[e.pid].append(e)
        out: dict[str, list[float]] = {k: [] for k in GAPS}
        for timings in by_worker.values():
            out["first_trial"].append(timings[0].began - self.started)
            for prev, cur in pairwise(timings):
                kind = "between_epochs" if cur.trial_id == prev.trial_id else "between_trials"
                out[kind].append(cur.began - prev.at)
        return out

    def summary(self) -> dict[str, float]:
        """The mean of each gap (0 where none was seen)."""
        return {k: sum(v) / len(v) if v else 0.0 for k, v in self.gaps().items()}

    def idle_breakdown(self, wall_s: float, slots: int) -> dict[str, float]:
        """Slot-seconds of ``wall_s × slots`` not spent in an epoch, by cause; "tail and other"
        is what is left: slots waiting for the last trials, and slots never used."""
        sums = {k: sum(v) for k, v in self.gaps().items()}
        sums["tail_and_other"] = wall_s * slots - self.busy_s - sum(sums.values())
        return sums
