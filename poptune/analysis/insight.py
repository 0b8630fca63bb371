"""The insight part of `poptune analyze`: family table, ensemble, model bundle, plots, report.

It runs after the winner is retrained and returns what to add to metrics.json (new keys only:
the contract keys of docs/design.md stay as they are) and the Markdown sections to append to
report.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poptune.analysis.ensemble import ensemble
from poptune.analysis.finalists import family_table
from poptune.analysis.importance import FamilyImportance, family_importances, load_study, study_url
from poptune.analysis.profile import (
    band_errors,
    correlations,
    partial_dependence,
    skewed_values,
)
from poptune.analysis.report import plots, sections
from poptune.analysis.results import SearchResults, best_per_family
from poptune.analysis.retrain import Retrained, RetrainPool
from poptune.data import Prepared
from poptune.files import write_bytes_atomic
from poptune.layout import MODEL_DIR, PLOTS_DIR
from poptune.metric import clip_popularity, regression_scores
from poptune.trainables import predict
from poptune.trainables.bundle import write_bundle

PD_SHOWN = 6  # partial-dependence panels: the features that move the prediction most


@dataclass(frozen=True)
class Insight:
    metrics: dict[str, Any]  # keys to add to metrics.json
    markdown: str  # sections to append to report.md
    summary: str  # lines for the terminal


def build_insight(
    exp_dir: Path,
    out: Path,
    results: SearchResults,
    prepared: Prepared,
    winner: Retrained,
    meta: dict[str, Any],
    *,
    pool: RetrainPool,
    ensemble_k: int,
    log: Callable[[str], None] = print,
) -> Insight:
    settings = meta["settings"]
    families = family_table(results, pool)  # the finalists hold each family's best already
    ens = None
    if ensemble_k:
        log(f"building the ensemble of the top {ensemble_k} distinct configs…")
        ens = ensemble(results, ensemble_k, pool, prepared)

    # The bundled model is the final model (the winner's seed ensemble); the test plots show
    # that model, so they describe exactly what `poptune predict` will answer.
    model, target_scale = winner.seed_ensemble(), winner.fits[0].target_scale
    test_pred = clip_popularity(predict(model, prepared.x_test, target_scale))
    scores = regression_scores(prepared.y_test, test_pred)
    model_info = {
        "dir": MODEL_DIR,
        "seeds": list(winner.seeds),
        "members": len(winner.seeds),
        "epochs": winner.epochs,
        "best_epochs": list(winner.best_epochs),
        "val_mse": winner.ensemble_val_mse,
        "test_rmse": scores["rmse"],
        "test_mae": scores["mae"],
    }
    bundle_scores = {k: model_info[k] for k in ("val_mse", "test_rmse", "test_mae")}
    write_bundle(
        out / MODEL_DIR,
        model,
        target_scale,
        winner.config,
        prepared,
        training={k: model_info[k] for k in ("epochs", "best_epochs", "seeds")},
        scores=bundle_scores,
    )

    importances, importance_note = _importances(exp_dir, settings, log)
    corr = correlations(prepared)
    curves = partial_dependence(model, target_scale, prepared, seed=settings["seed"])
    bands = band_errors(prepared.y_test, test_pred)

    figures = {
        "optimization_history": _history_plot(results, settings["max_epochs"]),
        "family_best": plots.family_best(
            {f: [t.best_val_mse for t in ts] for f, ts in best_per_family(results).items()}
        ),
        "importance": plots.importance(importances),
        "predicted_vs_actual": plots.predicted_vs_actual(
            prepared.y_test, test_pred, scores["rmse"]
        ),
        "error_by_band": plots.error_by_band(bands),
        "correlations": plots.correlations(corr),
        "skewed_features": plots.histograms(skewed_values(prepared)),
        "partial_dependence": plots.partial_dependence(curves[:PD_SHOWN]),
    }
    for name, png in figures.items():
        write_bytes_atomic(out / PLOTS_DIR / f"{name}.png", png)

    metrics: dict[str, Any] = {
        "families": {row.family: row.to_dict() for row in families},
        "model": model_info,
        "test_by_band": [b.to_dict() for b in bands],
        "importance": {i.family: i.importances for i in importances},
        "drivers": {
            "correlation": corr,
            "partial_dependence_effect": {c.feature: c.effect for c in curves},
        },
        "plots": [f"{PLOTS_DIR}/{name}.png" for name in figures],
    }
    if ens is not None:
        metrics["ensemble"] = ens.to_dict()
    parts = [
        sections.families_md(families),
        sections.ensemble_md(ens) if ens is not None else "",
        sections.search_md(importance_note),
        sections.test_md(model_info, bands),
        sections.drivers_md(corr, curves),
        sections.bundle_md(out / MODEL_DIR),
        sections.explore_md(exp_dir, study_url(exp_dir, settings)),
    ]
    return Insight(
        metrics=metrics,
        markdown="\n".join(p for p in parts if p),
        summary=sections.terminal_summary(families, ens),
    )


def _importances(
    exp_dir: Path, settings: dict[str, Any], log: Callable[[str], None]
) -> tuple[list[FamilyImportance], str]:
    url = study_url(exp_dir, settings)
    if url is None:
        return [], "No Optuna study was found next to the experiment, so no importance."
    try:
        study = load_study(url, settings["name"])
        return family_importances(study, seed=settings["seed"]), ""
    except Exception as exc:  # any storage failure: importance is optional, the report is not
        log(f"note: no parameter importance: cannot read the Optuna study ({exc})")
        return [], f"The Optuna study could not be read ({type(exc).__name__}), so no importance."


def _history_plot(results: SearchResults, max_epochs: int) -> bytes:
    # Tune lists trials in the order it created them, which is the order TPE sampled them.
    scored = [(i + 1, t) for i, t in enumerate(results.trials) if t.best_val_mse is not None]
    return plots.optimization_history(
        [i for i, _ in scored],
        [t.best_val_mse for _, t in scored],
        [t.config.family for _, t in scored],
        [t.epochs < max_epochs for _, t in scored],
    )
