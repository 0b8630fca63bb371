"""How the final model does and what it learned: test error by popularity band, and what drives
popularity (the data's own correlations next to the model's partial dependence).

One test RMSE hides that a regressor to the mean misses the hits, hence the bands: half-open
[lo, hi) except the last, which includes 100.

Correlations and partial dependence work on the prepared (scaled) arrays: Pearson correlation
does not change under the RobustScaler's per-feature shift and scale, and raw units come back by
inverting the scaler.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from poptune.data import FEATURES, Prepared
from poptune.metric import clip_popularity
from poptune.trainables import TargetScale, predict

# Long-tailed or zero-heavy features of the Kaggle file: their histograms explain why the scaler
# is robust and why a tree and a network may treat them differently.
SKEWED = ("instrumentalness", "speechiness", "liveness", "duration_ms")
PD_GRID = 25
PD_ROWS = 2000  # rows averaged per grid point: plenty for a smooth mean, cheap to predict
PD_QUANTILES = (0.01, 0.99)  # the sweep's range: the observed bulk, not a 90-minute outlier
BANDS: tuple[tuple[int, int], ...] = ((0, 10), (10, 30), (30, 50), (50, 70), (70, 100))


@dataclass(frozen=True)
class BandError:
    label: str
    n: int
    rmse: float | None  # None for an empty band
    mae: float | None
    bias: float | None  # mean(prediction − actual): < 0 means the band is under-predicted

    def to_dict(self) -> dict:
        return asdict(self)


def band_errors(y_true: np.ndarray, y_pred: np.ndarray) -> list[BandError]:
    y = np.asarray(y_true, dtype=np.float64)
    err = clip_popularity(np.asarray(y_pred, dtype=np.float64)) - y
    out = []
    for i, (lo, hi) in enumerate(BANDS):
        last = i == len(BANDS) - 1
        mask = (y >= lo) & ((y <= hi) if last else (y < hi))
        e = err[mask]
        if e.size == 0:
            out.append(BandError(f"{lo}–{hi}", 0, None, None, None))
            continue
        out.append(
            BandError(
                label=f"{lo}–{hi}",
                n=int(e.size),
                rmse=float(np.sqrt(np.mean(e**2))),
                mae=float(np.mean(np.abs(e))),
                bias=float(np.mean(e)),
            )
        )
    return out


@dataclass(frozen=True, eq=False)
class PDCurve:
    """Mean predicted popularity as one feature is swept, the others as observed."""

    feature: str
    grid: np.ndarray  # the swept values, in the feature's raw units
    mean_pred: np.ndarray  # popularity points, clipped like every prediction

    @property
    def effect(self) -> float:
        """How far the curve moves: the popularity points this feature alone can shift."""
        return float(self.mean_pred.max() - self.mean_pred.min())


def all_rows(prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Scaled features and popularity of every row used (train, validation and test)."""
    x = np.concatenate([prepared.x_train, prepared.x_val, prepared.x_test])
    y = np.concatenate([prepared.y_train, prepared.y_val, prepared.y_test])
    return x, y


def raw_features(prepared: Prepared, x_scaled: np.ndarray) -> np.ndarray:
    return prepared.scaler.inverse_transform(x_scaled.astype(np.float64))


def correlations(prepared: Prepared) -> dict[str, float | None]:
    """Pearson correlation of each feature with popularity (None for a constant column)."""
    x, y = all_rows(prepared)
    out: dict[str, float | None] = {}
    for i, name in enumerate(FEATURES):
        col = x[:, i].astype(np.float64)
        if col.std() == 0 or y.std() == 0:
            out[name] = None
            continue
        r = float(np.corrcoef(col, y.astype(np.float64))[0, 1])
        out[name] = r if math.isfinite(r) else None
    return out


def skewed_values(prepared: Prepared) -> dict[str, np.ndarray]:
    x, _ = all_rows(prepared)
    raw = raw_features(prepared, x)
    return {name: raw[:, FEATURES.index(name)] for name in SKEWED}


def partial_dependence(
    model: nn.Module,
    scale: TargetScale,
    prepared: Prepared,
    *,
    grid: int = PD_GRID,
    rows: int = PD_ROWS,
    seed: int = 0,
) -> list[PDCurve]:
    """A curve per feature, largest effect first.

    For each grid value the feature is set to that value in every sampled test row and the
    predictions are averaged: the model's answer to "and if only this feature changed?".
    """
    x = prepared.x_test
    if len(x) > rows:
        x = x[np.random.default_rng(seed).choice(len(x), rows, replace=False)]
    curves = []
    for i, name in enumerate(FEATURES):
        lo, hi = np.quantile(prepared.x_train[:, i], PD_QUANTILES)
        values = np.unique(np.linspace(lo, hi, grid).astype(np.float32))
        stacked = np.repeat(x[None, :, :], len(values), axis=0)
        stacked[:, :, i] = values[:, None]
        pred = clip_popularity(predict(model, stacked.reshape(-1, x.shape[1]), scale))
        mean_pred = pred.reshape(len(values), len(x)).mean(axis=1)
        raw_grid = _raw_column(prepared, i, values)
        curves.append(PDCurve(feature=name, grid=raw_grid, mean_pred=mean_pred))
    return sorted(curves, key=lambda c: c.effect, reverse=True)


def _raw_column(prepared: Prepared, i: int, scaled: np.ndarray) -> np.ndarray:
    scaler = prepared.scaler
    return scaled.astype(np.float64) * scaler.scale_[i] + scaler.center_[i]
