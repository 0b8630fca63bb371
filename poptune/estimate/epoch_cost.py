"""What an epoch of a config costs: a per-step cost model, timed here, averaged over the space.

A training step's time is close to linear in a few things: a fixed cost per step for each family
(dispatch: BatchNorm and dropout add kernels), and per batch row the activations, the dropout
draws and the multiply-adds. `calibrate_locally` times a handful of configs chosen to pull those
apart; `EpochCostModel` fits them (non-negative least squares on relative error) and prices any
config; `sample_space` draws configs from the search space's prior, as TPE's first trials are.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from poptune.data import FEATURES
from poptune.spaces import define_space
from poptune.trainables.config import DROPOUT_FAMILIES, FAMILIES, ModelConfig
from poptune.trainables.splits import Splits, TrainingData


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


def subset(splits: Splits, rows: int) -> TrainingData:
    """The first ``rows`` training rows (already shuffled by `prepare`) and all validation rows."""
    return dataclasses.replace(
        TrainingData.of(splits), x_train=splits.x_train[:rows], y_train=splits.y_train[:rows]
    )


def calibrate_locally(prepared: Splits, threads: int) -> EpochCostModel:
    """Time each calibration config's second epoch on a slice of rows, in this process."""
    from poptune.trainables import fit, predict

    configs, step_s, val_s = _calibration_configs(), [], []
    for config in configs:
        rows = min(len(prepared.x_train), max(20 * config.batch_size, 16_384))
        result = fit(config, subset(prepared, rows), epochs=2, seed=0, threads=threads)
        started = time.perf_counter()
        predict(result.model, prepared.x_val, result.target_scale)
        val = time.perf_counter() - started
        val_s.append(val)
        steps = math.ceil(rows / config.batch_size)
        step_s.append(max(result.history[-1]["seconds"] - val, 1e-6) / steps)
    return EpochCostModel.fit(configs, step_s, len(prepared.x_val), val_s)
