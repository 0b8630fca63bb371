"""`poptune analyze`: the analysis step, from a finished search to its report, in order.

1. Finalists: the search's top configs and each family's best, retrained with several seeds;
   the winner is the lowest mean validation MSE (best_config.json is rewritten for it).
2. Baselines, the per-family table and (with ``--ensemble K``) the ensemble, all scored on the
   same test rows.
3. The final model (the winner's seed ensemble, see ``final_model``) is bundled in ``model/``, for
   `poptune predict`.
4. Where it errs and what drives it, importance, plots; then metrics.json, report.md and
   report.html.

Retrains are shared through one pool, so no config is trained twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from poptune.analysis.baselines import baseline_scores
from poptune.analysis.config_ensemble import ensemble
from poptune.analysis.export import write_best_config
from poptune.analysis.final_model import describe, final_model
from poptune.analysis.finalists import family_table, finalists
from poptune.analysis.importance import read_importances, study_url
from poptune.analysis.metrics import added_metrics, contract_metrics
from poptune.analysis.profile import band_errors, correlations, partial_dependence, skewed_values
from poptune.analysis.report import plots, sections
from poptune.analysis.report.html import markdown_to_html
from poptune.analysis.report.summary import finalists_table, markdown_report, terminal_table
from poptune.analysis.results import SearchResults, best_per_family, read_results
from poptune.analysis.retrain import Retrained, RetrainPool
from poptune.analysis.settings import AnalyzeSettings
from poptune.data import DataSource, Prepared, load_source, prepare
from poptune.errors import ExperimentError
from poptune.files import read_json, write_bytes_atomic, write_json_atomic, write_text_atomic
from poptune.layout import (
    ANALYSIS_DIR,
    METRICS_FILE,
    MODEL_DIR,
    PLOTS_DIR,
    REPORT_FILE,
    REPORT_HTML_FILE,
    SEARCH_FILE,
)
from poptune.metric import clip_popularity, regression_scores
from poptune.trainables import predict
from poptune.trainables.bundle import write_bundle
from poptune.trainables.seed_ensemble import SeedEnsemble

PD_SHOWN = 6  # partial-dependence panels: the features that move the prediction most


def load_search_meta(exp_dir: Path) -> dict[str, Any]:
    path = exp_dir / SEARCH_FILE
    if not exp_dir.is_dir():
        raise ExperimentError(f"{exp_dir}: no such experiment directory; pass <storage>/<name>")
    if not path.is_file():
        raise ExperimentError(
            f"{exp_dir}: has no {SEARCH_FILE}, so it was not made by `poptune search`; "
            "pass the folder poptune created, <storage>/<name>"
        )
    return read_json(path)


def prepared_for(meta: dict[str, Any], data_override: str | None) -> Prepared:
    """Rebuild exactly the split the search used (same source, seed and dedupe)."""
    settings = meta["settings"]
    source = DataSource.from_dict(settings["data"])
    if data_override is not None:
        source = DataSource(path=data_override)
    frame = load_source(source, expect_sha256=meta["data"]["sha256"])
    return prepare(frame, seed=settings["seed"], dedupe=settings["dedupe"])


def analyze(
    exp_dir: str | Path, settings: AnalyzeSettings, *, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Analyze the search in ``exp_dir`` into ``settings.out``; return metrics.json's content."""
    exp_dir = Path(exp_dir)
    meta = load_search_meta(exp_dir)
    out = Path(settings.out) if settings.out else exp_dir / ANALYSIS_DIR
    results = read_results(exp_dir)
    results.best()  # refuses a search without a single finite result, before any work
    if results.unfinished or results.errored:
        log(
            f"note: reporting on {results.terminated} finished trial(s); {results.errored} errored "
            f"and {results.unfinished} did not finish (`poptune search --resume` continues them)"
        )
    prepared = prepared_for(meta, settings.data)
    seed, horizon = meta["settings"]["seed"], meta["settings"]["max_epochs"]
    pool = RetrainPool(prepared, epochs=horizon, seeds=settings.seeds, base_seed=seed, log=log)
    log(
        f"re-evaluating the finalists (the top {settings.finalists} configs and each family's "
        f"best) with {settings.seeds} seed(s) each; the winner is the best mean validation MSE…"
    )
    rows = finalists(results, settings.finalists, pool)
    chosen = rows[0]
    log(finalists_table([f.to_dict() for f in rows]))
    log("training and scoring the baselines (mean, linear, hgb, seed_mlp)…")
    baselines = baseline_scores(prepared, seed=seed)
    families = family_table(results, pool)  # the finalists hold each family's best already
    ens = None
    if settings.ensemble:
        log(f"building the ensemble of the top {settings.ensemble} distinct configs…")
        ens = ensemble(results, settings.ensemble, pool, prepared)

    # The bundled model is the final model (the winner's seed ensemble); the test plots show
    # that model, so they describe exactly what `poptune predict` will answer.
    winner = chosen.retrained
    final = final_model(winner, prepared, base_seed=seed, log=log)
    write_best_config(exp_dir, chosen.trial, meta, retrained=winner, final=final)
    model, target_scale = final.seed_ensemble(), final.fits[0].target_scale
    test_pred = clip_popularity(predict(model, prepared.x_test, target_scale))
    model_info = _write_bundle(
        out / MODEL_DIR, final, model, test_pred, prepared, what=describe(final, winner)
    )
    importances, importance_note = read_importances(exp_dir, meta["settings"], log)
    corr = correlations(prepared)
    curves = partial_dependence(model, target_scale, prepared, seed=seed)
    bands = band_errors(prepared.y_test, test_pred)
    figures = {
        "optimization_history": _history_plot(results, horizon),
        "family_best": plots.family_best(
            {f: [t.best_val_mse for t in ts] for f, ts in best_per_family(results).items()}
        ),
        "importance": plots.importance(importances),
        "predicted_vs_actual": plots.predicted_vs_actual(
            prepared.y_test, test_pred, model_info["test_rmse"]
        ),
        "error_by_band": plots.error_by_band(bands),
        "correlations": plots.correlations(corr),
        "skewed_features": plots.histograms(skewed_values(prepared)),
        "partial_dependence": plots.partial_dependence(curves[:PD_SHOWN]),
    }
    for name, png in figures.items():
        write_bytes_atomic(out / PLOTS_DIR / f"{name}.png", png)

    shown = [f"{PLOTS_DIR}/{name}.png" for name in figures]
    metrics = {  # added keys are new ones only: the contract keys stay as they are
        **contract_metrics(chosen, final, rows, baselines, prepared, results, meta),
        **added_metrics(families, ens, model_info, bands, importances, corr, curves, shown),
    }
    write_json_atomic(out / METRICS_FILE, metrics)
    parts = [
        sections.families_md(families),
        sections.ensemble_md(ens) if ens is not None else "",
        sections.search_md(importance_note),
        sections.test_md(model_info, bands),
        sections.drivers_md(corr, curves),
        sections.bundle_md(out / MODEL_DIR),
        sections.explore_md(exp_dir, study_url(exp_dir, meta["settings"])),
    ]
    report = markdown_report(metrics) + "\n" + "\n".join(p for p in parts if p)
    write_text_atomic(out / REPORT_FILE, report)
    write_text_atomic(out / REPORT_HTML_FILE, markdown_to_html(report, out))
    log(terminal_table(metrics))
    log(sections.terminal_summary(families, ens))
    log(f"wrote {out / METRICS_FILE}, {REPORT_FILE}, {REPORT_HTML_FILE} and {MODEL_DIR}/ there")
    return metrics


def _write_bundle(
    model_dir: Path,
    final: Retrained,
    model: SeedEnsemble,
    test_pred: np.ndarray,
    prepared: Prepared,
    *,
    what: str,
) -> dict[str, Any]:
    """Bundle the final model (``model``: its seed ensemble, ``test_pred``: its clipped test
    predictions, ``what``: what it is, in words); return metrics.json's ``model`` entry."""
    scores = regression_scores(prepared.y_test, test_pred)
    model_info = {
        "dir": MODEL_DIR,
        "what": what,
        "seeds": list(final.seeds),
        "members": len(final.seeds),
        "epochs": final.epochs,
        "best_epochs": list(final.best_epochs),
        "val_mse": final.ensemble_val_mse,
        "test_rmse": scores["rmse"],
        "test_mae": scores["mae"],
    }
    write_bundle(
        model_dir,
        model,
        final.fits[0].target_scale,
        final.config,
        prepared,
        training={k: model_info[k] for k in ("what", "epochs", "best_epochs", "seeds")},
        scores={k: model_info[k] for k in ("val_mse", "test_rmse", "test_mae")},
    )
    return model_info


def _history_plot(results: SearchResults, max_epochs: int) -> bytes:
    # Tune lists trials in the order it created them, which is the order TPE sampled them.
    scored = [(i + 1, t) for i, t in enumerate(results.trials) if t.best_val_mse is not None]
    return plots.optimization_history(
        [i for i, _ in scored],
        [t.best_val_mse for _, t in scored],
        [t.config.family for _, t in scored],
        [t.epochs < max_epochs for _, t in scored],
    )
