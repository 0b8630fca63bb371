"""`poptune estimate`: the wall time a search will take, predicted before it runs.

The prediction multiplies three measured things and one counted one:

1. what an epoch costs, per config: a per-step cost model (a fixed cost per step for each family,
   plus costs per activation, per dropout draw and per multiply-add) fitted to a handful of
   configs timed in this process, then averaged over configs drawn from the search space;
2. how fast the cluster runs it, and Tune's own costs: one short calibration search on the
   cluster (the real `run_search`, a few trials of 2 epochs on a slice of the rows) gives the
   first trial's start, the gap between epochs, the gap between trials on a reused worker, and
   the cluster's speed relative to this process;
3. how many slots run at once: the cluster's CPUs (and GPUs) over a trial's, capped by
   --max-concurrent and the number of trials;
4. how many epochs ASHA lets the trials run (`expected_trial_epochs`): Ray's async rule, a trial
   continues past a rung if it beats the (1 - 1/rf) quantile of the results recorded there so
   far, simulated for trials of random quality.

Assumptions, said where they are made: trials are as likely to be slow as fast whether or not ASHA
keeps them; TPE's later, focused samples cost what the prior's do; a trial ranks the same at
every rung.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from poptune.data import FEATURES, Prepared
from poptune.search.settings import SearchSettings
from poptune.spaces import define_space
from poptune.trainables.config import DROPOUT_FAMILIES, FAMILIES, REFERENCE, ModelConfig

ASHA_REDUCTION_FACTOR = 3  # runner.py's ASHAScheduler(reduction_factor=...)
SPACE_SAMPLES = 4000
CALIBRATION_EPOCHS = 2
CALIBRATION_ROWS = 40_960  # training rows a calibration trial sees: short epochs, real steps
MAX_CALIBRATION_SLOTS = 4


# ----------------------------------------------------------------------------- ASHA


def asha_milestones(max_t: int, grace_period: int, rf: float = ASHA_REDUCTION_FACTOR) -> list[int]:
    """The rungs where Ray's ASHA may stop a trial, below max_t (its `_Bracket`, one bracket)."""
    rungs = int(np.log(max_t / grace_period) / np.log(rf) + 1)
    milestones = sorted(int(grace_period * rf**k) for k in range(rungs))
    return [m for m in milestones if m < max_t]


def expected_trial_epochs(
    num_samples: int,
    max_epochs: int,
    *,
    scheduler: str,
    grace_period: int,
    rf: float = ASHA_REDUCTION_FACTOR,
    seed: int = 0,
) -> float:
    """Expected epochs summed over all trials: every trial runs max_epochs under fifo.

    Under asha, by simulation of Ray's rule: a trial reaching a rung stops if its result is
    below the (1 - 1/rf) percentile of the results recorded there before it (the first to arrive
    always continues, so a small search stops fewer trials than 1/rf suggests). Each trial gets
    one random quality that ranks it the same at every rung, and trials arrive in order.
    """
    milestones = asha_milestones(max_epochs, min(grace_period, max_epochs), rf)
    if scheduler != "asha" or not milestones:
        return float(num_samples * max_epochs)
    rng = np.random.default_rng(seed)
    runs = max(20, 20_000 // num_samples)
    total = 0
    for _ in range(runs):
        recorded: list[list[float]] = [[] for _ in milestones]  # sorted, higher is better
        for quality in rng.standard_normal(num_samples):
            epochs = max_epochs
            for seen, milestone in zip(recorded, milestones, strict=True):
                cutoff = _percentile(seen, 1 - 1 / rf)
                bisect.insort(seen, quality)  # Ray records the result whatever it decides
                if cutoff is not None and quality < cutoff:
                    epochs = milestone
                    break
            total += epochs
    return total / runs


def _percentile(ordered: list[float], q: float) -> float | None:
    """numpy's default (linear) percentile of an already sorted list; None if empty."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    if low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[low + 1] - ordered[low])


# ----------------------------------------------------------------------------- epoch cost


def step_features(config: ModelConfig) -> np.ndarray:
    """What a training step's time is linear in: one intercept per family (dispatch), then per
    batch row the activations, the dropout draws and the multiply-adds."""
    widths = config.widths
    fans = (len(FEATURES), *widths)
    macs = sum(a * b for a, b in zip(fans, (*widths, 1), strict=True))
    dropout = sum(widths[:-1]) if config.family in DROPOUT_FAMILIES else 0
    intercepts = [float(config.family == f) for f in FAMILIES]
    b = config.batch_size
    return np.array([*intercepts, b * sum(widths), b * dropout, b * macs], dtype=np.float64)


def validation_features(config: ModelConfig, rows: int) -> np.ndarray:
    widths = config.widths
    fans = (len(FEATURES), *widths)
    macs = sum(a * b for a, b in zip(fans, (*widths, 1), strict=True))
    return np.array([1.0, rows * macs], dtype=np.float64)


@dataclass(frozen=True)
class EpochCostModel:
    """Seconds per training step and per validation pass, linear in the features above."""

    step_coef: tuple[float, ...]
    val_coef: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        configs: Sequence[ModelConfig],
        step_s: Sequence[float],
        val_rows: int,
        val_s: Sequence[float],
    ) -> EpochCostModel:
        """Non-negative least squares, relative errors: a cheap step counts as much as a dear."""
        step_x = np.stack([step_features(c) for c in configs])
        step_y = np.asarray(step_s, dtype=np.float64)
        step_coef, _ = nnls(step_x / step_y[:, None], np.ones(len(step_y)))
        val_x = np.stack([validation_features(c, val_rows) for c in configs])
        val_y = np.asarray(val_s, dtype=np.float64)
        val_coef, _ = nnls(val_x / val_y[:, None], np.ones(len(val_y)))
        return cls(tuple(map(float, step_coef)), tuple(map(float, val_coef)))

    def step_s(self, config: ModelConfig) -> float:
        return float(step_features(config) @ np.asarray(self.step_coef))

    def epoch_s(self, config: ModelConfig, train_rows: int, val_rows: int) -> float:
        steps = math.ceil(train_rows / config.batch_size)
        val = float(validation_features(config, val_rows) @ np.asarray(self.val_coef))
        return steps * self.step_s(config) + val


class _PriorTrial:
    """Draws from the search space as Optuna's RandomSampler does (the prior TPE starts from),
    through `define_space` itself, so the space is never restated here."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.params = rng, {}

    def suggest_categorical(self, name: str, choices: tuple) -> object:
        self.params[name] = choices[int(self.rng.integers(len(choices)))]
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        if log:
            drawn = math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
        else:
            drawn = self.rng.uniform(low - 0.5, high + 0.5)
        self.params[name] = int(min(max(round(drawn), low), high))
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        if log:
            self.params[name] = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            self.params[name] = float(self.rng.uniform(low, high))
        return self.params[name]


def sample_space(n: int, seed: int) -> list[ModelConfig]:
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        trial = _PriorTrial(rng)
        define_space(trial)
        configs.append(ModelConfig.from_dict(trial.params))
    return configs


def mean_epoch_s(
    model: EpochCostModel, num_samples: int, train_rows: int, val_rows: int, seed: int
) -> float:
    """Mean epoch over a search's trials: the reference model first, then the space's prior."""
    prior = [model.epoch_s(c, train_rows, val_rows) for c in sample_space(SPACE_SAMPLES, seed)]
    reference = model.epoch_s(REFERENCE, train_rows, val_rows)
    return (reference + (num_samples - 1) * float(np.mean(prior))) / num_samples


# ----------------------------------------------------------------------------- wall time


@dataclass(frozen=True)
class Overheads:
    """Measured by the calibration search, in seconds."""

    ray_start: float  # Ray start and shutdown around the search
    first_trial: float  # Tune's start to a slot's first epoch (worker, imports, data)
    between_epochs: float  # report and checkpoint, per epoch
    between_trials: float  # a reused worker, from one trial's end to the next one's first epoch
    speed: float  # the cluster's epoch time over this process's model of it


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


def predict_wall(
    *,
    trials: int,
    trial_epochs: float,
    epoch_s: float,
    slots: int,
    overheads: Overheads,
) -> Estimate:
    """Slot-seconds of work spread over the slots, plus the first start and the last wave.

    Every slot starts once (the first-trial cost); every later trial pays the gap between
    trials; every epoch its report. At the end, the other slots wait on average half a trial.
    """
    slots = max(1, min(slots, trials))
    epoch = epoch_s * overheads.speed
    training = trial_epochs * epoch
    work = training + trial_epochs * overheads.between_epochs
    work += (trials - slots) * overheads.between_trials
    trial_s = work / trials
    tail = (slots - 1) / slots * trial_s / 2
    wall = overheads.first_trial + work / slots + tail
    return Estimate(
        wall_s=wall,
        ray_start_s=overheads.ray_start,
        trials=trials,
        trial_epochs=trial_epochs,
        mean_epoch_s=epoch,
        slots=slots,
        first_trial_s=overheads.first_trial,
        busy_share=training / (wall * slots),
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------------------- calibration


def _calibration_configs() -> list[ModelConfig]:
    """Each family at batch 64 and 2048, and two wide ones: enough spread to fit every term."""
    mid = {"width_1": 128, "width_2": 64, "width_3": 32, "dropout": 0.2}
    wide = {"width_1": 512, "width_2": 256, "width_3": 128, "dropout": 0.2}
    base = {"lr": 1e-3, "weight_decay": 0.0}
    configs = [
        ModelConfig.from_dict({**base, **mid, "family": f, "batch_size": b})
        for f in FAMILIES
        for b in (64, 2048)
    ]
    configs += [
        ModelConfig.from_dict({**base, **wide, "family": f, "batch_size": 2048})
        for f in ("MLP2Layer", "MLP3LayerDropout")
    ]
    return configs


def _subset(prepared: Prepared, rows: int) -> Prepared:
    return dataclasses.replace(
        prepared, x_train=prepared.x_train[:rows], y_train=prepared.y_train[:rows]
    )


def calibrate_locally(prepared: Prepared, threads: int) -> EpochCostModel:
    """Time each calibration config's second epoch on a slice of rows, in this process."""
    from poptune.trainables import fit, predict

    configs, step_s, val_s = _calibration_configs(), [], []
    for config in configs:
        rows = min(len(prepared.x_train), max(20 * config.batch_size, 16_384))
        result = fit(config, _subset(prepared, rows), epochs=2, seed=0, threads=threads)
        started = time.perf_counter()
        predict(result.model, prepared.x_val, result.target_scale)
        val = time.perf_counter() - started
        val_s.append(val)
        steps = math.ceil(rows / config.batch_size)
        step_s.append(max(result.history[-1]["seconds"] - val, 1e-6) / steps)
    return EpochCostModel.fit(configs, step_s, len(prepared.x_val), val_s)


def slots(settings: SearchSettings, cpus: float, gpus: float) -> int:
    """Trials that run at once on a cluster of ``cpus`` and ``gpus``."""
    fit = cpus / settings.cpus_per_trial
    if settings.gpus_per_trial > 0:
        fit = min(fit, gpus / settings.gpus_per_trial)
    fit = min(fit, settings.max_concurrent or math.inf, settings.num_samples)
    return max(1, math.floor(fit))


def calibrate_on_cluster(
    settings: SearchSettings, prepared: Prepared, model: EpochCostModel
) -> tuple[Overheads, int]:
    """One short search through `run_search` itself; returns the overheads and the slots."""
    import os

    from poptune.search.clock import SearchClock
    from poptune.search.runner import run_search

    # A few slots show the overheads; a local machine may have fewer than that.
    if settings.address or os.environ.get("RAY_ADDRESS"):
        probe = min(slots(settings, math.inf, math.inf), MAX_CALIBRATION_SLOTS)
    else:
        import torch

        cpus, gpus = os.cpu_count() or 1, torch.cuda.device_count()
        probe = min(slots(settings, cpus, gpus), MAX_CALIBRATION_SLOTS)
    small = _subset(prepared, CALIBRATION_ROWS)
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
    predicted = {
        t: model.epoch_s(ModelConfig.from_dict(c), len(small.x_train), len(small.x_val))
        for t, c in clock.configs.items()
    }
    # Later epochs only: a fresh worker's first epoch also pays one-off warm-up costs.
    ratios = [e.seconds / predicted[e.trial_id] for e in clock.epochs if e.epoch > 1]
    overheads = Overheads(
        ray_start=call_s - outcome.wall_s,
        first_trial=gaps["first_trial"],
        between_epochs=gaps["between_epochs"],
        between_trials=gaps["between_trials"],
        speed=float(np.median(ratios)) if ratios else 1.0,
    )
    return overheads, slots(settings, clock.cluster_cpus, clock.cluster_gpus)


def estimate_search(settings: SearchSettings, prepared: Prepared) -> Estimate:
    """Calibrate (here and on the cluster) and predict the wall time of ``settings``'s search."""
    threads = max(1, int(settings.cpus_per_trial))
    model = calibrate_locally(prepared, threads)
    overheads, slots = calibrate_on_cluster(settings, prepared, model)
    epochs = expected_trial_epochs(
        settings.num_samples,
        settings.max_epochs,
        scheduler=settings.scheduler,
        grace_period=settings.grace_period,
    )
    epoch_s = mean_epoch_s(
        model, settings.num_samples, len(prepared.x_train), len(prepared.x_val), settings.seed
    )
    return predict_wall(
        trials=settings.num_samples,
        trial_epochs=epochs,
        epoch_s=epoch_s,
        slots=slots,
        overheads=overheads,
    )
