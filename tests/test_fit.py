"""`fit` without Ray: what its history says, that it learns, and that it never reports NaN.

Bit-for-bit determinism across runs and resumes is covered in test_determinism.py; here the seed
is checked once per family at the level a user sees (the reported curve).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from poptune.metric import regression_scores
from poptune.trainables import FAMILIES, ModelConfig, fit, predict
from tests.test_models import config_for


def _curve(history) -> list[tuple]:
    return [(h["epoch"], h["train_loss"], h["val_mse"], h["val_mae"]) for h in history]


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_history_other_seed_other_history(family, small_prepared):
    config = config_for(family, batch_size=128, lr=3e-3)
    a = fit(config, small_prepared, epochs=2, seed=5, threads=1)
    b = fit(config.to_dict(), small_prepared, epochs=2, seed=5, threads=1)  # the Tune dict path
    c = fit(config, small_prepared, epochs=2, seed=6, threads=1)
    assert _curve(a.history) == _curve(b.history)
    assert _curve(a.history) != _curve(c.history)


def test_history_has_one_entry_per_epoch_and_best_epoch_is_the_lowest_val_mse(small_prepared):
    result = fit(config_for("MLP2Layer", batch_size=64, lr=3e-3), small_prepared, epochs=5, seed=0)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    for h in result.history:
        assert h["seconds"] > 0 and not h["diverged"]
        assert h["val_rmse"] == pytest.approx(math.sqrt(h["val_mse"]))
        assert 0 < h["val_mae"] <= h["val_rmse"]
    mses = [h["val_mse"] for h in result.history]
    assert result.best_epoch == int(np.argmin(mses)) + 1
    assert result.best["val_mse"] == min(mses)


def test_history_scores_are_the_models_own_predictions(small_prepared):
    result = fit(config_for("MLP1Layer", batch_size=64), small_prepared, epochs=1, seed=0)
    pred = predict(result.model, small_prepared.x_val, result.target_scale)
    scores = regression_scores(small_prepared.y_val, pred)
    assert result.history[-1]["val_mse"] == pytest.approx(scores["mse"], rel=1e-6)


def test_it_learns_more_than_the_training_mean(small_prepared):
    result = fit(config_for("MLP2Layer", batch_size=64, lr=3e-3), small_prepared, epochs=8, seed=0)
    mean_only = regression_scores(
        small_prepared.y_val, np.full(len(small_prepared.y_val), small_prepared.y_train.mean())
    )
    assert result.best["val_mse"] < 0.9 * mean_only["mse"]


def test_a_diverging_config_reports_finite_numbers_and_stops(small_prepared):
    """A NaN val_mse would poison the Optuna study and end up in metrics.json: never report one."""
    config = ModelConfig(family="MLP1Layer", width_1=512, lr=1e12, batch_size=64)
    result = fit(config, small_prepared, epochs=5, seed=0)
    last = result.history[-1]
    assert last["diverged"] and len(result.history) < 5
    for h in result.history:
        assert math.isfinite(h["val_mse"]) and math.isfinite(h["val_mae"])


def test_zero_epochs_is_refused(small_prepared):
    with pytest.raises(ValueError, match="epochs must be >= 1, but got 0"):
        fit(config_for("MLP1Layer"), small_prepared, epochs=0, seed=0)
