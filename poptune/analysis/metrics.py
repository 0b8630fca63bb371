"""metrics.json: the contract keys (docs/design.md: they never change meaning), then the keys
the rest of the analysis adds (families, model, test by band, importance, drivers, plots,
ensemble)."""

from __future__ import annotations

from typing import Any

from poptune.analysis.config_ensemble import EnsembleResult
from poptune.analysis.final_model import describe
from poptune.analysis.finalists import FamilyRow, Finalist
from poptune.analysis.importance import FamilyImportance
from poptune.analysis.profile import BandError, PDCurve
from poptune.analysis.results import SearchResults
from poptune.analysis.retrain import Retrained
from poptune.data import Prepared


def contract_metrics(
    chosen: Finalist,
    final: Retrained,
    rows: list[Finalist],
    baselines: dict[str, dict[str, float]],
    prepared: Prepared,
    results: SearchResults,
    meta: dict[str, Any],
) -> dict[str, Any]:
    winner = chosen.retrained
    members = len(winner.seeds)
    return {
        "test": {
            "rmse": winner.test_rmse.mean,
            "mae": winner.test_mae.mean,
            "rmse_std": winner.test_rmse.std,
            "mae_std": winner.test_mae.std,
            "rmse_ci95": list(winner.test_rmse.ci95),
            "mae_ci95": list(winner.test_mae.ci95),
            "n_seeds": members,
            "epochs": winner.epochs,
            "best_epochs": list(winner.best_epochs),
            "what": f"the winner retrained with {members} seed(s), each model scored alone",
        },
        "val": {
            "mse": chosen.trial.best_val_mse,  # its trial's, as the search saw it
            "mse_retrained": winner.val_mse.mean,
        },
        "baselines": baselines,
        "best_config": winner.config.to_dict(),
        "finalists": [f.to_dict() for f in rows],
        "final": {
            "rmse": final.ensemble_test["rmse"],
            "mae": final.ensemble_test["mae"],
            "val_mse": final.ensemble_val_mse,
            "members": len(final.seeds),
            "epochs": final.epochs,
            "what": describe(final, winner),
        },
        # DataInfo as it is, less the split seed: best_config.json's reproduce block has that.
        "data": {k: v for k, v in prepared.info.to_dict().items() if k != "seed"},
        "search": {
            "trials": len(results.trials),
            "terminated": results.terminated,
            "errored": results.errored,
            "unfinished": results.unfinished,
            "wall_s": float(meta.get("wall_s") or 0.0),
            "time_budget_s": meta["settings"].get("time_budget"),
        },
    }


def added_metrics(
    families: list[FamilyRow],
    ens: EnsembleResult | None,
    model: dict[str, Any],
    bands: list[BandError],
    importances: list[FamilyImportance],
    corr: dict[str, float | None],
    curves: list[PDCurve],
    plots: list[str],
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "families": {row.family: row.to_dict() for row in families},
        "model": model,
        "test_by_band": [b.to_dict() for b in bands],
        "importance": {i.family: i.importances for i in importances},
        "drivers": {
            "correlation": corr,
            "partial_dependence_effect": {c.feature: c.effect for c in curves},
        },
        "plots": plots,
    }
    if ens is not None:
        metrics["ensemble"] = ens.to_dict()
    return metrics
