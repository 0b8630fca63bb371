"""Retrain each config once and share it: finalists, winner, per-family table and ensemble.

Every retrain uses the same seed list and the same epoch horizon (the search's), so two configs
are compared seed by seed, and the ensemble of seed *i* averages models that all saw seed *i*.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from poptune.analysis.retrain import Retrained, retrain_many
from poptune.data import Prepared
from poptune.metric import regression_scores
from poptune.trainables import ModelConfig, predict


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
