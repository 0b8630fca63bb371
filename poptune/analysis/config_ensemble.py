"""`--ensemble K`: average the top-K distinct configs and compare with the single winner, fairly.

Fair means model for model: the ensemble of seed *i* averages K models that were each trained
with seed *i*, and is compared with the winner trained with seed *i*. Averaging the winner's own
seeds would also lower the error, but that is seed averaging, not the ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from poptune.analysis.results import SearchResults, TrialRecord, top_distinct
from poptune.analysis.retrain import RetrainPool, SeedSummary, seed_predictions, seed_rmses
from poptune.data import Prepared
from poptune.metric import regression_scores


@dataclass(frozen=True)
class EnsembleResult:
    k_requested: int
    members: tuple[TrialRecord, ...]
    rmse: SeedSummary
    mae: SeedSummary
    winner_rmse: SeedSummary
    gain: SeedSummary  # winner RMSE − ensemble RMSE, paired by seed: > 0 means the ensemble won
    n_seeds: int

    @property
    def k(self) -> int:
        return len(self.members)

    @property
    def beats_winner(self) -> bool:
        """Better on average over the seeds (whether that is clear of noise: ``clearly_better``)."""
        return self.gain.mean > 0

    @property
    def clearly_better(self) -> bool:
        return self.gain.ci95[0] > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "k_requested": self.k_requested,
            "rmse": self.rmse.mean,
            "mae": self.mae.mean,
            "rmse_std": self.rmse.std,
            "rmse_ci95": list(self.rmse.ci95),
            "n_seeds": self.n_seeds,
            "winner_rmse": self.winner_rmse.mean,
            "rmse_gain": self.gain.mean,
            "rmse_gain_ci95": list(self.gain.ci95),
            "beats_winner": self.beats_winner,
            "members": [
                {**m.config.to_dict(), "search_best_epoch": m.best_epoch, "val_mse": m.best_val_mse}
                for m in self.members
            ],
        }


def ensemble(
    results: SearchResults, k: int, pool: RetrainPool, prepared: Prepared
) -> EnsembleResult:
    members = top_distinct(results, k)
    retrained = pool.get_many([m.config for m in members])
    per_member = [seed_predictions(r, prepared.x_test) for r in retrained]
    n_seeds = len(per_member[0])
    scores = [
        regression_scores(prepared.y_test, np.mean([p[i] for p in per_member], axis=0))
        for i in range(n_seeds)
    ]
    rmses = [s["rmse"] for s in scores]
    winner = seed_rmses(retrained[0], prepared)
    return EnsembleResult(
        k_requested=k,
        members=tuple(members),
        rmse=SeedSummary.of(rmses),
        mae=SeedSummary.of([s["mae"] for s in scores]),
        winner_rmse=SeedSummary.of(winner),
        gain=SeedSummary.of([w - e for w, e in zip(winner, rmses, strict=True)]),
        n_seeds=n_seeds,
    )
