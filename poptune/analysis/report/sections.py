"""The prose of the sections of report.md after its head (and the terminal summary), from numbers.

Kept apart from the computation in ``analysis``: wording changes never touch what is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from poptune.analysis.config_ensemble import EnsembleResult
from poptune.analysis.finalists import FamilyRow
from poptune.analysis.profile import BandError, PDCurve
from poptune.trainables import ModelConfig


def terminal_summary(families: list[FamilyRow], ens: EnsembleResult | None) -> str:
    lines = ["per family (best config, retrained for the same horizon and seeds):"]
    for row in families:
        lo, hi = row.retrained.test_rmse.ci95
        lines.append(
            f"  {row.family:<18} val MSE {row.retrained.val_mse.mean:8.2f}   test RMSE "
            f"{row.retrained.test_rmse.mean:.3f} [95% CI {lo:.3f}–{hi:.3f}]"
        )
    if ens is not None:
        verdict = "beats" if ens.beats_winner else "does not beat"
        lines.append(
            f"ensemble of {ens.k}: test RMSE {ens.rmse.mean:.3f} vs winner "
            f"{ens.winner_rmse.mean:.3f} (same seeds): {verdict} the single winner"
            + ("" if ens.clearly_better or not ens.beats_winner else ", within noise")
        )
    return "\n".join(lines)


def describe_config(config: ModelConfig) -> str:
    """`widths 128-64-32, dropout 0.20, lr 1.0e-03, batch 64, wd 1.0e-08`: a config in a cell."""
    widths = "-".join(str(w) for w in config.widths)
    parts = [f"width {widths}" if len(config.widths) == 1 else f"widths {widths}"]
    if config.dropout is not None:
        parts.append(f"dropout {config.dropout:.2f}")
    parts += [f"lr {config.lr:.1e}", f"batch {config.batch_size}", f"wd {config.weight_decay:.1e}"]
    parts += [f"{config.features} inputs", f"{config.schedule} lr"]
    return ", ".join(parts)


def families_md(rows: list[FamilyRow]) -> str:
    lines = [
        "## Families",
        "",
        "Each family's best trial, retrained with the winner's seeds and scored on the test split. "
        "Every family gets the same epoch horizon (the search's), keeping each seed's best "
        "validation epoch, so a family whose best trial ASHA stopped early is not judged by "
        "that short run. Rows are ordered by mean validation MSE of the retrained models.",
        "",
        "| family | trials | search val MSE | retrained val MSE | test RMSE (mean ± std) | 95% CI "
        "| test MAE | best epochs | best config |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.retrained
        lo, hi = r.test_rmse.ci95
        lines.append(
            f"| {row.family} | {row.trials} | {row.best.best_val_mse:.2f} | "
            f"{r.val_mse.mean:.2f} | {r.test_rmse.mean:.3f} ± {r.test_rmse.std:.3f} | "
            f"{lo:.3f}–{hi:.3f} | {r.test_mae.mean:.3f} | "
            f"{', '.join(str(e) for e in r.best_epochs)} | {describe_config(row.best.config)} |"
        )
    return "\n".join([*lines, ""])


def ensemble_md(ens: EnsembleResult) -> str:
    lo, hi = ens.gain.ci95
    if ens.clearly_better:
        verdict = f"**beats** the single winner by {ens.gain.mean:.3f} RMSE (paired 95% CI of "
        verdict += f"the gain {lo:.3f}–{hi:.3f}, clear of zero)"
    elif ens.beats_winner:
        verdict = f"is better than the single winner by {ens.gain.mean:.3f} RMSE on average, "
        verdict += f"but within noise (paired 95% CI of the gain {lo:.3f}–{hi:.3f} covers zero)"
    else:
        verdict = f"does **not** beat the single winner (gain {ens.gain.mean:+.3f} RMSE, "
        verdict += f"paired 95% CI {lo:.3f}–{hi:.3f})"
    fewer = (
        f" (only {ens.k} distinct configs were available of the {ens.k_requested} asked for)"
        if ens.k < ens.k_requested
        else ""
    )
    members = "; ".join(f"{m.config.family} {describe_config(m.config)}" for m in ens.members)
    return "\n".join(
        [
            "## Ensemble",
            "",
            f"The average of the top {ens.k} distinct configs{fewer} reaches test RMSE "
            f"{ens.rmse.mean:.3f} (MAE {ens.mae.mean:.3f}) against {ens.winner_rmse.mean:.3f} "
            f"for the single winner, both over the same {ens.n_seeds} seed(s) (seed by seed, the "
            f"ensemble averages models trained with the same seed): it {verdict}.",
            "",
            f"Members: {members}.",
            "",
        ]
    )


def search_md(importance_note: str) -> str:
    return "\n".join(
        [
            "## The search",
            "",
            "![Optimization history](plots/optimization_history.png)",
            "",
            "![Best validation MSE per family](plots/family_best.png)",
            "",
            "Importance is computed per family on a copy of the Optuna study holding only that "
            "family's trials, so its widths and dropout count too; trials stopped early enter "
            "with the value they were stopped at. With a handful of trials it is a hint, not a "
            "measurement. " + importance_note,
            "",
            "![Hyperparameter importance per family](plots/importance.png)",
            "",
        ]
    )


def test_md(model: dict[str, Any], bands: list[BandError]) -> str:
    lines = [
        "## The bundled model on the test split",
        "",
        f"`model/` holds the final model, {model['what']} (seeds "
        f"{', '.join(str(s) for s in model['seeds'])}): test RMSE {model['test_rmse']:.3f}, "
        f"MAE {model['test_mae']:.3f}.",
        "",
        "![Predicted vs actual popularity](plots/predicted_vs_actual.png)",
        "",
        "![Test error by popularity band](plots/error_by_band.png)",
        "",
        "| popularity band | tracks | RMSE | MAE | bias (pred − actual) |",
        "|---|---|---|---|---|",
    ]
    for b in bands:
        if b.n == 0:
            lines.append(f"| {b.label} | 0 | – | – | – |")
        else:
            lines.append(f"| {b.label} | {b.n} | {b.rmse:.2f} | {b.mae:.2f} | {b.bias:+.2f} |")
    lines += ["", _bias_sentence(bands), ""]
    return "\n".join(lines)


def _bias_sentence(bands: list[BandError]) -> str:
    """Say in words what the bias column shows at the two ends of the scale."""
    filled = [b for b in bands if b.n]
    if len(filled) < 2:
        return ""
    low, high = filled[0], filled[-1]
    if low.bias > 0 > high.bias:
        return (
            f"The model pulls towards the middle, as a squared-error fit does: tracks at "
            f"{low.label} are over-predicted by {low.bias:.1f} points on average and tracks at "
            f"{high.label} under-predicted by {-high.bias:.1f}."
        )
    return (
        f"Mean error (predicted − actual) is {low.bias:+.1f} points at {low.label} and "
        f"{high.bias:+.1f} at {high.label}."
    )


def drivers_md(corr: dict[str, float | None], curves: list[PDCurve]) -> str:
    effect = {c.feature: c.effect for c in curves}
    order = sorted(effect, key=effect.get, reverse=True)
    lines = [
        "## What drives popularity",
        "",
        "The data's own view (correlation of each feature with popularity, all rows used) next "
        "to the winner's (partial dependence: one feature swept over its 1st–99th percentile, the "
        "others as observed in the test rows, predictions averaged; the effect is how many "
        "popularity points the curve spans).",
        "",
        "| feature | correlation with popularity | model effect (points) |",
        "|---|---|---|",
    ]
    for name in order:
        r = corr.get(name)
        lines.append(f"| {name} | {'–' if r is None else f'{r:+.2f}'} | {effect[name]:.1f} |")
    lines += [
        "",
        "![Correlation with popularity](plots/correlations.png)",
        "",
        "![Skewed features](plots/skewed_features.png)",
        "",
        "![Partial dependence](plots/partial_dependence.png)",
        "",
    ]
    return "\n".join(lines)


def bundle_md(model_dir: Path) -> str:
    return "\n".join(
        [
            "## Take the model away",
            "",
            "`model/` holds `model.safetensors` (weights only, nothing to unpickle) and "
            "`bundle.json` (config, feature order, the fitted scaler's `center_`/`scale_`, the "
            "target scale, data sha256 and package versions). Predict new tracks with:",
            "",
            f"    poptune predict {model_dir} --data tracks.csv --out predictions.csv",
            "",
        ]
    )


def explore_md(exp_dir: Path, url: str | None) -> str:
    lines = [
        "## Look further",
        "",
        "Every trial's curves, and one HParams row per trial with its best validation MSE:",
        "",
        f"    tensorboard --logdir {exp_dir}",
        "",
    ]
    if url:
        lines += [
            "The Optuna study (TPE's view: pruned trials included):",
            "",
            f"    optuna-dashboard {url}",
            "",
        ]
    return "\n".join(lines)
