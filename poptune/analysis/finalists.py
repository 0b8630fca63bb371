"""Retrained candidates: the finalists (the first is the winner) and the per-family table.

Finalists are the search's top configs, retrained with several seeds, the winner chosen by mean.

A search ranks trials by one noisy validation score each: with ~2,000 validation rows a single
model's validation RMSE moves by about ±0.3 between seeds, as much as the differences the search
chooses between, so the top trial is often a lucky draw (the winner's curse). Retraining the top
few distinct configs with the same seeds and choosing by the mean validation error picks the
config that is good, not the seed that was. The test split plays no part in the choice.

Each family's best config joins the finalists too: the per-family table retrains it anyway, and
a search that spent most of its trials on one family may rank another family's best lower than
it deserves.

The per-family table: a search that finds one family best says little about how far behind the
others are; retraining each family's best config with the same seeds, for the same epoch horizon
(not the two epochs at which ASHA may have stopped its trial), puts a fair confidence interval on
every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poptune.analysis.results import SearchResults, TrialRecord, best_per_family, top_distinct
from poptune.analysis.retrain import Retrained, RetrainPool


@dataclass(frozen=True, eq=False)
class Finalist:
    trial: TrialRecord  # the search trial the config came from
    rank_in_search: int  # 1 = the search's own best trial
    retrained: Retrained
    why: str  # "top-k" or "family best"

    def to_dict(self) -> dict[str, Any]:
        r = self.retrained
        return {
            "config": r.config.to_dict(),
            "trial_id": self.trial.trial_id,
            "rank_in_search": self.rank_in_search,
            "why": self.why,
            "search_val_mse": self.trial.best_val_mse,
            "val_mse_mean": r.val_mse.mean,
            "val_mse_std": r.val_mse.std,
            "val_mse_ci95": list(r.val_mse.ci95),
            "n": len(r.seeds),
            "best_epochs": list(r.best_epochs),
            "test_rmse_mean": r.test_rmse.mean,
            "test_rmse_ci95": list(r.test_rmse.ci95),
        }


def finalists(results: SearchResults, k: int, pool: RetrainPool) -> list[Finalist]:
    """The top ``k`` distinct configs of the search and each family's best, retrained, best
    mean val MSE first."""
    chosen = {t.config: (t, "top-k") for t in top_distinct(results, k)}
    for trials in best_per_family(results).values():
        chosen.setdefault(trials[0].config, (trials[0], "family best"))
    rank = {t.trial_id: i + 1 for i, t in enumerate(results.ranked())}
    picked = list(chosen.values())
    retrained = pool.get_many([t.config for t, _ in picked])
    rows = [
        Finalist(trial=t, rank_in_search=rank[t.trial_id], retrained=r, why=why)
        for (t, why), r in zip(picked, retrained, strict=True)
    ]
    return sorted(rows, key=lambda f: f.retrained.val_mse.mean)


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
