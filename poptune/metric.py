"""The one objective of every search, defined once and imported wherever it is needed."""

import numpy as np

METRIC = "val_mse"
MODE = "min"

# Popularity is an integer score on a closed scale; a prediction outside it is always wrong, so
# every model's predictions are clipped before scoring (the winner, baselines and `predict` alike).
POPULARITY_MIN = 0.0
POPULARITY_MAX = 100.0


def clip_popularity(pred: np.ndarray) -> np.ndarray:
    return np.clip(pred, POPULARITY_MIN, POPULARITY_MAX)


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE and MAE in popularity points, after clipping the predictions to the scale."""
    err = clip_popularity(np.asarray(y_pred, dtype=np.float64)) - np.asarray(y_true, np.float64)
    mse = float(np.mean(err**2))
    return {"mse": mse, "rmse": mse**0.5, "mae": float(np.mean(np.abs(err)))}
