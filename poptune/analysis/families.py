"""The per-family table: each family's best trial, retrained with the winner's seeds.

A search that finds one family best says little about how far behind the others are; retraining
each family's best config with the same seeds, for the same epoch horizon (not the two epochs
at which ASHA may have stopped its trial), puts a fair confidence interval on every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poptune.analysis.pool import RetrainPool
from poptune.analysis.results import SearchResults, TrialRecord
from poptune.analysis.retrain import Retrained
from poptune.trainables import FAMILIES


@dataclass(frozen=True, eq=False)
class FamilyRow:
    family: str
    trials: int  # trials of this family with a finite val_mse
    best: TrialRecord
    retrained: Retrained

    def to_dict(self) -> dict[str, Any]:
        r = self.retrained
        return {
            "config": self.best.config.to_dict(),
            "trial_id": self.best.trial_id,
            "trials": self.trials,
            "val_mse": self.best.best_val_mse,
            "epochs": r.epochs,
            "best_epochs": list(r.best_epochs),
            "test": {
                "rmse": r.test_rmse.mean,
                "rmse_std": r.test_rmse.std,
                "rmse_ci95": list(r.test_rmse.ci95),
                "mae": r.test_mae.mean,
                "n_seeds": len(r.seeds),
            },
        }


def best_per_family(results: SearchResults) -> dict[str, list[TrialRecord]]:
    """Ranked trials of each family that reported a finite val_mse, best first (FAMILIES order)."""
    ranked = results.ranked()
    grouped = {family: [t for t in ranked if t.config.family == family] for family in FAMILIES}
    return {family: trials for family, trials in grouped.items() if trials}


def family_table(results: SearchResults, pool: RetrainPool) -> list[FamilyRow]:
    """One row per family the search tried, best mean retrained val_mse first."""
    rows = [
        FamilyRow(
            family=family,
            trials=len(trials),
            best=trials[0],
            retrained=pool.get(trials[0].config),
        )
        for family, trials in best_per_family(results).items()
    ]
    return sorted(rows, key=lambda row: row.retrained.val_mse.mean)
