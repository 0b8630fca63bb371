"""The report's figures, drawn with matplotlib's object API (no pyplot state, Agg canvas).

Each function takes plain numbers and returns PNG bytes, so it can be tested without a search.
Every axis carries a label with its unit; colours stand for the same family in every figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from poptune.analysis.importance import FamilyImportance
from poptune.analysis.profile import BandError, PDCurve
from poptune.trainables import FAMILIES

DPI = 110
FAMILY_COLORS = dict(zip(FAMILIES, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"), strict=True))
SCATTER_MAX = 5000  # test rows drawn as dots; more are binned
UNITS = {"duration_ms": "minutes", "loudness": "dB", "tempo": "BPM"}


def _figure(width: float = 8.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _display(feature: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Values in the unit a reader thinks in (minutes, not milliseconds) and the axis label."""
    if feature == "duration_ms":
        return np.asarray(values) / 60_000.0, "duration (minutes)"
    unit = UNITS.get(feature)
    return np.asarray(values), f"{feature} ({unit})" if unit else feature


def optimization_history(
    order: Sequence[int],
    values: Sequence[float],
    families: Sequence[str],
    stopped: Sequence[bool],
) -> bytes:
    """Each trial's best val MSE in the order it was sampled, and the best so far."""
    fig = _figure()
    ax = fig.subplots()
    vals = np.asarray(values, dtype=float)
    for family in FAMILIES:
        for early, marker in ((False, "o"), (True, "x")):
            idx = [i for i, (f, s) in enumerate(zip(families, stopped, strict=True))
                   if f == family and s == early]  # fmt: skip
            if idx:
                ax.scatter(
                    np.asarray(order)[idx],
                    vals[idx],
                    marker=marker,
                    color=FAMILY_COLORS[family],
                    label=f"{family}{' (stopped early)' if early else ''}",
                    zorder=3,
                )
    ax.step(order, np.minimum.accumulate(vals), where="post", color="black", label="best so far")
    if vals.max() > 3 * vals.min() > 0:  # a few terrible trials would flatten everything else
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in the order TPE sampled it)")
    ax.set_ylabel("best validation MSE (popularity²)")
    ax.set_title("Optimization history")
    ax.grid(alpha=0.3)
    # Outside the axes: inside, it would hide the trials it describes.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def family_best(per_family: dict[str, Sequence[float]]) -> bytes:
    """Every trial's best val MSE per family, the family's best marked and labelled."""
    fig = _figure()
    ax = fig.subplots()
    names = [f for f in FAMILIES if per_family.get(f)]
    rng = np.random.default_rng(0)
    for i, family in enumerate(names):
        vals = np.asarray(per_family[family], dtype=float)
        jitter = rng.uniform(-0.15, 0.15, len(vals))
        ax.scatter(i + jitter, vals, color=FAMILY_COLORS[family], alpha=0.5, s=20)
        best = vals.min()
        ax.hlines(best, i - 0.3, i + 0.3, color=FAMILY_COLORS[family], linewidth=3)
        ax.annotate(
            f"{best:.1f}",
            (i + 0.32, best),
            va="center",
            fontsize=9,
            color=FAMILY_COLORS[family],
        )
    ax.set_xticks(range(len(names)), [f"{f}\n({_trials(len(per_family[f]))})" for f in names])
    ax.set_xlim(-0.6, len(names) - 0.2)
    ax.set_xlabel("family")
    ax.set_ylabel("best validation MSE per trial (popularity²)")
    ax.set_title("Best validation MSE per family (line: the family's best; dots: its trials)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def importance(entries: Sequence[FamilyImportance]) -> bytes:
    """fANOVA importance of each hyperparameter, one panel per family that had enough trials;
    the others are named underneath with the reason, so an empty panel never takes a page."""
    shown = [e for e in entries if e.importances is not None]
    skipped = [e for e in entries if e.importances is None]
    notes = [f"{e.family}: not computed ({e.note})" for e in skipped]
    if not entries:
        notes = ["no Optuna study was found for this experiment"]
    if not shown:
        fig = _figure(8.0, 0.6 + 0.3 * len(notes))
        fig.text(0.5, 0.5, "\n".join(notes), ha="center", va="center", fontsize=10)
        fig.suptitle("Hyperparameter importance within each family (Optuna fANOVA)")
        return _png(fig)
    cols = 2 if len(shown) > 1 else 1
    rows = math.ceil(len(shown) / cols)
    fig = _figure(9.0, 3.0 * rows + 0.3 * len(notes))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, entry in zip(axes, shown, strict=False):
        items = sorted(entry.importances.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color=FAMILY_COLORS[entry.family])
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (share of val-MSE variance)")
        ax.set_title(f"{entry.family} ({_trials(entry.trials)}, {entry.pruned} stopped early)",
                     fontsize=10)  # fmt: skip
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(shown) :]:
        ax.set_axis_off()
    fig.suptitle("Hyperparameter importance within each family (Optuna fANOVA)")
    if notes:
        fig.supxlabel("\n".join(notes), fontsize=9)
    return _png(fig)


def predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray, rmse: float) -> bytes:
    fig = _figure(6.0, 5.6)
    ax = fig.subplots()
    if len(y_true) <= SCATTER_MAX:
        ax.scatter(y_true, y_pred, s=6, alpha=0.35, color="#1f77b4", label="test track")
    else:  # tens of thousands of dots would be one blot: count them per cell instead
        hb = ax.hexbin(y_true, y_pred, gridsize=50, extent=(0, 100, 0, 100), mincnt=1,
                       bins="log", cmap="viridis")  # fmt: skip
        fig.colorbar(hb, ax=ax, label="test tracks per cell (log scale)")
    ax.plot([0, 100], [0, 100], color="red", linewidth=1, label="perfect prediction")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_aspect("equal")
    ax.set_xlabel("actual popularity")
    ax.set_ylabel("predicted popularity")
    ax.set_title(f"Predicted vs actual, test split (RMSE {rmse:.2f})")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def error_by_band(bands: Sequence[BandError]) -> bytes:
    fig = _figure()
    ax = fig.subplots()
    x = np.arange(len(bands))
    width = 0.27
    series = (("rmse", "RMSE", "#1f77b4"), ("mae", "MAE", "#9ecae1"), ("bias", "bias", "#d62728"))
    for j, (attr, label, color) in enumerate(series):
        vals = [getattr(b, attr) if getattr(b, attr) is not None else np.nan for b in bands]
        ax.bar(x + (j - 1) * width, vals, width, label=label, color=color)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{b.label}\n(n={b.n})" for b in bands])
    ax.set_xlabel("actual popularity band")
    ax.set_ylabel("error (popularity points)")
    ax.set_title("Test error by popularity band (bias = mean of predicted − actual)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def correlations(corr: dict[str, float | None]) -> bytes:
    items = sorted(((k, v) for k, v in corr.items() if v is not None), key=lambda kv: kv[1])
    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    colors = ["#d62728" if v < 0 else "#2ca02c" for _, v in items]
    ax.barh([k for k, _ in items], [v for _, v in items], color=colors)
    for i, (_, v) in enumerate(items):
        ax.annotate(f"{v:+.2f}", (v, i), xytext=(4 if v >= 0 else -4, 0),
                    textcoords="offset points", va="center", ha="left" if v >= 0 else "right",
                    fontsize=8)  # fmt: skip
    lim = max([abs(v) for _, v in items] + [0.1]) * 1.3
    ax.set_xlim(-lim, lim)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Pearson correlation with popularity")
    ax.set_title("Each audio feature's correlation with popularity (all rows used)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def histograms(values: dict[str, np.ndarray]) -> bytes:
    """Histograms of the skewed features; the top 0.5% of duration is cut off (and counted)."""
    fig = _figure(9.0, 6.0)
    axes = fig.subplots(2, 2).ravel()
    for ax, (name, raw) in zip(axes, values.items(), strict=False):
        vals, label = _display(name, raw)
        note = ""
        if name == "duration_ms":
            hi = np.quantile(vals, 0.995)
            cut = int((vals > hi).sum())
            vals = vals[vals <= hi]
            note = f" ({cut} longer than {hi:.0f} min not shown)" if cut else ""
        ax.hist(vals, bins=50, color="#1f77b4")
        ax.set_xlabel(label + note, fontsize=9)
        ax.set_ylabel("tracks")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle("Skewed features (why the scaler is a RobustScaler)")
    return _png(fig)


def partial_dependence(curves: Sequence[PDCurve]) -> bytes:
    n = len(curves)
    cols = min(3, max(1, n))
    rows = math.ceil(n / cols)
    fig = _figure(10.0, 3.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True)).ravel()
    for ax, curve in zip(axes, curves, strict=False):
        grid, label = _display(curve.feature, curve.grid)
        ax.plot(grid, curve.mean_pred, color="#1f77b4", linewidth=2)
        ax.set_xlabel(label)
        ax.set_title(f"{curve.feature}: moves it {curve.effect:.1f} points", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel("mean predicted popularity")
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle("Partial dependence of the winner (others as observed, 1st–99th percentile)")
    return _png(fig)
