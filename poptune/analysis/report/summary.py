"""The head of report.md (data, search, winner, finalists, test table, verdict) and the terminal's
results and finalists tables."""

from __future__ import annotations

from typing import Any

from poptune.analysis.baselines import BASELINES

_BASELINE_LABELS = {
    "mean": "mean (predict the training mean)",
    "linear": "linear (least squares)",
    "hgb": "hgb (HistGradientBoosting, defaults)",
    "seed_mlp": "seed_mlp (reference MLP3LayerDropout, 10 epochs)",
}


def results_table(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    test, final = metrics["test"], metrics["final"]
    lo, hi = test["rmse_ci95"]
    rows = [
        (
            f"poptune final model ({final['members']}-seed ensemble)"
            if final["members"] > 1
            else "poptune final model (one seed)",
            f"{final['rmse']:.3f}",
            f"{final['mae']:.3f}",
        ),
        (
            f"poptune winner, single model ({metrics['best_config']['family']}, "
            f"{test['n_seeds']} seeds)",
            f"{test['rmse']:.3f} ± {test['rmse_std']:.3f}  [95% CI {lo:.3f}–{hi:.3f}]",
            f"{test['mae']:.3f} ± {test['mae_std']:.3f}",
        ),
    ]
    for name in BASELINES:
        b = metrics["baselines"][name]
        rows.append((_BASELINE_LABELS[name], f"{b['rmse']:.3f}", f"{b['mae']:.3f}"))
    return rows


def terminal_table(metrics: dict[str, Any]) -> str:
    rows = [("model", "test RMSE", "test MAE"), *results_table(metrics)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n" + verdict(metrics)


def verdict(metrics: dict[str, Any]) -> str:
    """Plain words on whether the winner beat the bars, judged by its 95% CI, not its mean."""
    rmse = metrics["test"]["rmse"]
    lo, hi = metrics["test"]["rmse_ci95"]
    out = []
    for name in ("seed_mlp", "hgb"):
        bar = metrics["baselines"][name]["rmse"]
        if hi < bar:
            out.append(f"beats {name} ({bar:.3f}) by {bar - rmse:.3f} RMSE, its 95% CI clear of it")
        elif lo > bar:
            out.append(f"does NOT beat {name} ({bar:.3f}): worse by {rmse - bar:.3f} RMSE")
        else:
            out.append(
                f"is level with {name} ({bar:.3f}): its 95% CI [{lo:.3f}, {hi:.3f}] covers it"
            )
    final = metrics["final"]["rmse"]
    beats = [n for n in ("seed_mlp", "hgb") if final < metrics["baselines"][n]["rmse"]]
    closing = (
        f" The final model ({final:.3f}) beats {' and '.join(beats)}."
        if beats
        else f" The final model ({final:.3f}) beats neither."
    )
    return "The winner (single model) " + "; ".join(out) + "." + closing


def finalists_table(rows: list[dict[str, Any]]) -> str:
    """The finalists for the terminal: mean validation MSE ± 95% CI, the chosen one first."""
    lines = ["finalists (retrained; the winner is the lowest mean val MSE):"]
    for i, row in enumerate(rows):
        lo, hi = row["val_mse_ci95"]
        mark = "→" if i == 0 else " "
        lines.append(
            f" {mark} {row['config']['family']:<18} val MSE {row['val_mse_mean']:8.2f} "
            f"[95% CI {lo:.2f}–{hi:.2f}], n={row['n']}, search rank {row['rank_in_search']} "
            f"({row['why']}), search val MSE {row['search_val_mse']:.2f}"
        )
    return "\n".join(lines)


def finalists_md(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Finalists",
        "",
        "The search's top configs and each family's best, each retrained with the same seeds "
        "for the search's epoch horizon (keeping each seed's best validation epoch). The winner "
        "is the lowest *mean* validation MSE, not the luckiest single trial; the test column is "
        "shown for information and played no part in the choice.",
        "",
        "| | family | why | search rank | search val MSE | val MSE mean | 95% CI | n "
        "| test RMSE mean | config |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows):
        lo, hi = row["val_mse_ci95"]
        config = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row["config"].items()
            if k != "family"
        )
        lines.append(
            f"| {'**winner**' if i == 0 else ''} | {row['config']['family']} | {row['why']} | "
            f"{row['rank_in_search']} | {row['search_val_mse']:.2f} | {row['val_mse_mean']:.2f} "
            f"| {lo:.2f}–{hi:.2f} | {row['n']} | {row['test_rmse_mean']:.3f} | {config} |"
        )
    return [*lines, ""]


def markdown_report(metrics: dict[str, Any]) -> str:
    data, search, test = metrics["data"], metrics["search"], metrics["test"]
    kind = "**SYNTHETIC** built-in data" if data.get("synthetic") else f"`{data['source']}`"
    lines = [
        "# poptune report",
        "",
        f"Data: {kind} (sha256 `{data['sha256'][:16]}…`): {data['rows_raw']:,} rows read, "
        f"{data['rows_used']:,} used (dedupe: {data.get('dedupe')}); split "
        f"{data['train']:,} / {data['val']:,} / {data['test']:,} (train / val / test).",
        "",
        f"Search: {search['trials']} trials ({search['terminated']} finished, "
        f"{search['errored']} errored, {search.get('unfinished', 0)} unfinished) in "
        f"{search['wall_s']:.0f} s"
        + (f" (time budget {search['time_budget_s']:.0f} s)" if search.get("time_budget_s") else "")
        + f". The winner's validation MSE in the search: {metrics['val']['mse']:.3f}.",
        "",
        "## Winner",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in metrics["best_config"].items()],
        "",
        f"Retrained {test['n_seeds']} times with up to {test.get('epochs', '?')} epochs each "
        f"(the search's horizon), keeping each seed's best validation epoch "
        f"({', '.join(str(e) for e in test.get('best_epochs', []))}), and scored on the test "
        f"split. The final model: {metrics['final']['what']}.",
        "",
        *finalists_md(metrics["finalists"]),
        "## Test error, same rows for every model",
        "",
        "| model | test RMSE | test MAE |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in results_table(metrics)],
        "",
        verdict(metrics),
        "",
        "Reference study (Kaggle file, row split, val MSE ≈ 211.11): test RMSE ≈ 14.65, "
        "MAE ≈ 11.55. Compare with it only on the real file: synthetic data has its own noise.",
        "",
    ]
    return "\n".join(lines)
