"""Retrain configs with several seeds and score them: validation to choose, test to report.

Every retrain trains for the search's epoch horizon (the same learning-rate schedule the trials
had) and keeps the weights of each seed's best validation epoch, stopping after a few epochs
without a new best. That is fair to a config whose trial ASHA stopped after two epochs: its
retrain gets as long as any other. The fits of many configs run in parallel, one per core.

A :class:`RetrainPool` retrains each config once and shares it: finalists, winner, per-family
table and ensemble. Every retrain uses the same seed list and the same epoch horizon (the
search's), so two configs are compared seed by seed, and the ensemble of seed *i* averages
models that all saw seed *i*.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from poptune.data import Prepared
from poptune.metric import regression_scores
from poptune.trainables import FitResult, ModelConfig, fit, predict
from poptune.trainables.seed_ensemble import SeedEnsemble
from poptune.trainables.splits import Splits, TrainingData

# Epochs without a new best validation error after which a retrain stops: the kept weights are
# the best epoch's anyway, and on a long horizon with a constant rate most epochs after the best
# one only overfit.
PATIENCE = 5


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std and 95% t-interval of one metric over the retrained seeds."""

    mean: float
    std: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, values: Sequence[float]) -> SeedSummary:
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
    epochs: int  # the horizon each seed trained for (at most; early stopping may end it sooner)
    seeds: tuple[int, ...]
    fits: tuple[FitResult, ...]
    test_rmse: SeedSummary  # single models, one value per seed
    test_mae: SeedSummary
    val_mse: SeedSummary  # each seed's best validation epoch: what finalists are chosen by
    test_pred: np.ndarray  # the seed ensemble's prediction (mean over seeds)
    ensemble_test: dict[str, float]  # the seed ensemble's scores on test: rmse, mae, mse
    ensemble_val_mse: float

    @property
    def best_epochs(self) -> tuple[int, ...]:
        return tuple(f.best_epoch for f in self.fits)

    def seed_ensemble(self) -> SeedEnsemble:
        return SeedEnsemble([f.model for f in self.fits])


def seed_list(seeds: int, base_seed: int) -> tuple[int, ...]:
    """The seeds every retrain uses, so two configs are compared seed by seed."""
    return tuple(base_seed + 1000 * (i + 1) for i in range(seeds))


def retrain_many(
    configs: Sequence[ModelConfig],
    prepared: Prepared,
    *,
    epochs: int,
    seeds: int,
    base_seed: int,
    workers: int | None = None,
    keep_best: bool = True,
) -> list[Retrained]:
    """Train each config with ``seeds`` seeds (up to ``epochs`` each) and score them; the fits
    of all configs are spread over ``workers`` processes (default: one per core). Each keeps
    its best validation epoch's weights, or without ``keep_best`` trains all ``epochs`` and
    keeps the last's."""
    seed_values = seed_list(seeds, base_seed)
    jobs = [(config, seed) for config in configs for seed in seed_values]
    workers = workers or os.cpu_count() or 1
    fits = _fit_all(jobs, TrainingData.of(prepared), epochs, workers, keep_best)
    out = []
    for i, config in enumerate(configs):
        mine = fits[i * seeds : (i + 1) * seeds]
        out.append(_summarize(config, epochs, seed_values, mine, prepared))
    return out


class RetrainPool:
    def __init__(
        self,
        prepared: Prepared,
        *,
        epochs: int,
        seeds: int,
        base_seed: int,
        workers: int | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self._prepared = prepared
        self.epochs = epochs
        self.seeds = seeds
        self._base_seed = base_seed
        self._workers = workers
        self._log = log
        self._done: dict[ModelConfig, Retrained] = {}

    def get(self, config: ModelConfig) -> Retrained:
        return self.get_many([config])[0]

    def get_many(self, configs: Sequence[ModelConfig]) -> list[Retrained]:
        """Each config retrained (the missing ones now, all their fits in parallel)."""
        missing = list(dict.fromkeys(c for c in configs if c not in self._done))
        if missing:
            self._log(
                f"  retraining {len(missing)} config(s) × {self.seeds} seed(s), up to "
                f"{self.epochs} epochs each ({', '.join(c.family for c in missing)})…"
            )
            done = retrain_many(
                missing,
                self._prepared,
                epochs=self.epochs,
                seeds=self.seeds,
                base_seed=self._base_seed,
                workers=self._workers,
            )
            self._done.update(zip(missing, done, strict=True))
        return [self._done[c] for c in configs]


def seed_predictions(retrained: Retrained, x: np.ndarray) -> list[np.ndarray]:
    """Each seed's (unclipped) predictions on ``x``, in seed order."""
    return [predict(f.model, x, f.target_scale) for f in retrained.fits]


def seed_rmses(retrained: Retrained, prepared: Prepared) -> list[float]:
    return [
        regression_scores(prepared.y_test, p)["rmse"]
        for p in seed_predictions(retrained, prepared.x_test)
    ]


def _fit_one(
    config: ModelConfig, data: Splits, epochs: int, seed: int, keep_best: bool
) -> FitResult:
    return fit(config, data, epochs=epochs, seed=seed, threads=1, keep_best=keep_best,
               patience=PATIENCE if keep_best else None)  # fmt: skip


def _fit_all(
    jobs: list[tuple[ModelConfig, int]],
    data: Splits,
    epochs: int,
    workers: int,
    keep_best: bool,
) -> list[FitResult]:
    if workers <= 1 or len(jobs) <= 1:
        return [_fit_one(config, data, epochs, seed, keep_best) for config, seed in jobs]
    from joblib import Parallel, delayed  # scikit-learn's own dependency

    # max_nbytes=None: each worker gets its own writable copy (no read-only memmap for torch).
    parallel = Parallel(n_jobs=min(workers, len(jobs)), max_nbytes=None)
    calls = (delayed(_fit_one)(config, data, epochs, seed, keep_best) for config, seed in jobs)
    return parallel(calls)


def _summarize(
    config: ModelConfig,
    epochs: int,
    seeds: tuple[int, ...],
    fits: list[FitResult],
    prepared: Prepared,
) -> Retrained:
    test_preds = [predict(f.model, prepared.x_test, f.target_scale) for f in fits]
    val_preds = [predict(f.model, prepared.x_val, f.target_scale) for f in fits]
    scores = [regression_scores(prepared.y_test, p) for p in test_preds]
    mean_test = np.mean(test_preds, axis=0)
    return Retrained(
        config=config,
        epochs=epochs,
        seeds=seeds,
        fits=tuple(fits),
        test_rmse=SeedSummary.of([s["rmse"] for s in scores]),
        test_mae=SeedSummary.of([s["mae"] for s in scores]),
        val_mse=SeedSummary.of([f.best["val_mse"] for f in fits]),
        test_pred=mean_test,
        ensemble_test=regression_scores(prepared.y_test, mean_test),
        ensemble_val_mse=regression_scores(prepared.y_val, np.mean(val_preds, axis=0))["mse"],
    )
