"""The bars a searched MLP is measured against, all scored on the same test rows."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression

from poptune.data import Prepared
from poptune.metric import regression_scores
from poptune.trainables import REFERENCE, REFERENCE_EPOCHS, fit, predict

BASELINES = ("mean", "linear", "hgb", "seed_mlp")


def baseline_scores(
    prepared: Prepared, *, seed: int, threads: int | None = None
) -> dict[str, dict[str, float]]:
    """Test RMSE and MAE of each baseline (docs/design.md): mean, least squares, HGB, seed_mlp."""
    x, y = prepared.x_train, prepared.y_train
    preds = {
        "mean": np.full(len(prepared.y_test), float(np.mean(y))),
        "linear": LinearRegression().fit(x, y).predict(prepared.x_test),
        "hgb": HistGradientBoostingRegressor(random_state=seed).fit(x, y).predict(prepared.x_test),
    }
    reference = fit(REFERENCE, prepared, epochs=REFERENCE_EPOCHS, seed=seed, threads=threads)
    preds["seed_mlp"] = predict(reference.model, prepared.x_test, reference.target_scale)
    out = {}
    for name in BASELINES:
        scores = regression_scores(prepared.y_test, preds[name])
        out[name] = {"rmse": scores["rmse"], "mae": scores["mae"]}
    return out
