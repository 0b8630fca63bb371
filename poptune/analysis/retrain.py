"""Retrain the winning config with several seeds and score it on the test split, with a CI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from poptune.data import Prepared
from poptune.metric import regression_scores
from poptune.trainables import FitResult, ModelConfig, fit, predict


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std and 95% t-interval of one test metric over the retrained seeds."""

    mean: float
    std: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, values: list[float]) -> SeedSummary:
        arr = np.asarray(values, dtype=np.float64)
        mean = float(arr.mean())
        if len(arr) < 2:
            return cls(mean=mean, std=0.0, ci95=(mean, mean))
        std = float(arr.std(ddof=1))
        half = float(stats.t.ppf(0.975, len(arr) - 1)) * std / len(arr) ** 0.5
        return cls(mean=mean, std=std, ci95=(mean - half, mean + half))


@dataclass(frozen=True, eq=False)
class Retrained:
    config: ModelConfig
    epochs: int
    seeds: tuple[int, ...]
    fits: tuple[FitResult, ...]
    test_rmse: SeedSummary
    test_mae: SeedSummary
    val_mse: SeedSummary
    test_pred: np.ndarray  # mean prediction over seeds, for plots

    @property
    def best_fit(self) -> FitResult:
        """The seed whose model goes into the bundle: the lowest validation error."""
        return min(self.fits, key=lambda f: f.history[-1]["val_mse"])


def retrain(
    config: ModelConfig,
    prepared: Prepared,
    *,
    epochs: int,
    seeds: int,
    base_seed: int,
    threads: int | None = None,
) -> Retrained:
    """Train ``config`` for ``epochs`` with ``seeds`` seeds; score each on the test split."""
    seed_list = tuple(base_seed + 1000 * (i + 1) for i in range(seeds))
    fits, rmses, maes, vals, preds = [], [], [], [], []
    for seed in seed_list:
        result = fit(config, prepared, epochs=epochs, seed=seed, threads=threads)
        pred = predict(result.model, prepared.x_test, result.target_scale)
        scores = regression_scores(prepared.y_test, pred)
        fits.append(result)
        rmses.append(scores["rmse"])
        maes.append(scores["mae"])
        vals.append(result.history[-1]["val_mse"])
        preds.append(pred)
    return Retrained(
        config=config,
        epochs=epochs,
        seeds=seed_list,
        fits=tuple(fits),
        test_rmse=SeedSummary.of(rmses),
        test_mae=SeedSummary.of(maes),
        val_mse=SeedSummary.of(vals),
        test_pred=np.mean(preds, axis=0),
    )
