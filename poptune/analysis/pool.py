"""Retrain each (config, epochs) once and share it: winner, per-family table and ensemble.

Every retrain uses the same seed list (``retrain``'s ``base_seed + 1000·i``), so two configs are
compared seed by seed, and the ensemble of seed *i* averages models that all saw seed *i*.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from poptune.analysis.retrain import Retrained, retrain
from poptune.data import Prepared
from poptune.metric import regression_scores
from poptune.trainables import ModelConfig, predict


class RetrainPool:
    def __init__(
        self,
        prepared: Prepared,
        *,
        seeds: int,
        base_seed: int,
        log: Callable[[str], None] = print,
    ) -> None:
        self._prepared = prepared
        self._seeds = seeds
        self._base_seed = base_seed
        self._log = log
        self._done: dict[tuple[ModelConfig, int], Retrained] = {}

    def add(self, retrained: Retrained) -> None:
        """Register a retrain made elsewhere (the winner's, by ``analyze``)."""
        self._done[(retrained.config, retrained.epochs)] = retrained

    def get(self, config: ModelConfig, epochs: int) -> Retrained:
        key = (config, epochs)
        if key not in self._done:
            self._log(f"  retraining {config.family} for {epochs} epoch(s), {self._seeds} seed(s)…")
            self._done[key] = retrain(
                config, self._prepared, epochs=epochs, seeds=self._seeds, base_seed=self._base_seed
            )
        return self._done[key]


def seed_predictions(retrained: Retrained, x: np.ndarray) -> list[np.ndarray]:
    """Each seed's (unclipped) predictions on ``x``, in seed order."""
    return [predict(f.model, x, f.target_scale) for f in retrained.fits]


def seed_rmses(retrained: Retrained, prepared: Prepared) -> list[float]:
    return [
        regression_scores(prepared.y_test, p)["rmse"]
        for p in seed_predictions(retrained, prepared.x_test)
    ]
