"""`poptune analyze`: best trial → retrained winner and baselines → metrics.json and report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poptune.analysis.baselines import baseline_scores
from poptune.analysis.export import write_best_config
from poptune.analysis.finalists import Finalist, finalists
from poptune.analysis.insight import build_insight
from poptune.analysis.report.html import markdown_to_html
from poptune.analysis.report.summary import finalists_table, markdown_report, terminal_table
from poptune.analysis.results import SearchResults, read_results
from poptune.analysis.retrain import RetrainPool
from poptune.data import DataSource, Prepared, load_source, prepare
from poptune.errors import ExperimentError, UsageError
from poptune.files import read_json, write_json_atomic, write_text_atomic
from poptune.layout import (
    ANALYSIS_DIR,
    METRICS_FILE,
    MODEL_DIR,
    REPORT_FILE,
    REPORT_HTML_FILE,
    SEARCH_FILE,
)


@dataclass(frozen=True)
class AnalyzeSettings:
    seeds: int = 3
    finalists: int = 3  # top configs re-evaluated with `seeds` seeds (plus each family's best)
    ensemble: int = 0
    data: str | None = None  # override the searched data path (the file moved)
    out: str | None = None  # default: <experiment>/analysis

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise UsageError(f"--seeds must be a positive integer, but got {self.seeds!r}")
        if not isinstance(self.finalists, int) or self.finalists < 1:
            raise UsageError(f"--finalists must be a positive integer, but got {self.finalists!r}")
        if not isinstance(self.ensemble, int) or self.ensemble < 0:
            raise UsageError(f"--ensemble must be >= 0, but got {self.ensemble!r}")


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
    write_best_config(exp_dir, chosen.trial, meta, retrained=chosen.retrained)
    log(finalists_table([f.to_dict() for f in rows]))
    log("training and scoring the baselines (mean, linear, hgb, seed_mlp)…")
    baselines = baseline_scores(prepared, seed=seed)
    metrics = build_metrics(chosen, rows, baselines, prepared, results, meta)
    insight = build_insight(
        exp_dir, out, results, prepared, chosen.retrained, meta, pool=pool,
        ensemble_k=settings.ensemble, log=log,
    )  # fmt: skip
    metrics = {**metrics, **insight.metrics}  # new keys only: the contract keys stay as they are
    write_json_atomic(out / METRICS_FILE, metrics)
    report = markdown_report(metrics) + "\n" + insight.markdown
    write_text_atomic(out / REPORT_FILE, report)
    write_text_atomic(out / REPORT_HTML_FILE, markdown_to_html(report, out))
    log(terminal_table(metrics))
    log(insight.summary)
    log(f"wrote {out / METRICS_FILE}, {REPORT_FILE}, {REPORT_HTML_FILE} and {MODEL_DIR}/ there")
    return metrics


def build_metrics(
    chosen: Finalist,
    rows: list[Finalist],
    baselines: dict[str, dict[str, float]],
    prepared: Prepared,
    results: SearchResults,
    meta: dict[str, Any],
) -> dict[str, Any]:
    info = prepared.info
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
            "rmse": winner.ensemble_test["rmse"],
            "mae": winner.ensemble_test["mae"],
            "val_mse": winner.ensemble_val_mse,
            "members": members,
            "what": (
                f"seed ensemble: the winner trained with {members} seeds (best validation epoch "
                "of each), predictions averaged; the bundled model"
                if members > 1
                else "the winner trained once (best validation epoch); the bundled model"
            ),
        },
        "data": {
            "source": info.source,
            "sha256": info.sha256,
            "synthetic": info.synthetic,
            "rows_raw": info.rows_raw,
            "rows_used": info.rows_used,
            "duplicates_dropped": info.duplicates_dropped,
            "dropped": info.dropped,
            "fixed": info.fixed,
            "dedupe": info.dedupe,
            "train": info.train,
            "val": info.val,
            "test": info.test,
        },
        "search": {
            "trials": len(results.trials),
            "terminated": results.terminated,
            "errored": results.errored,
            "unfinished": results.unfinished,
            "wall_s": float(meta.get("wall_s") or 0.0),
            "time_budget_s": meta["settings"].get("time_budget"),
        },
    }
