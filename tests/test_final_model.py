"""The final model: the winner retrained with a cosine decay ending at its retrains' mean best
epoch (1.5× that for a constant-rate winner), the last weights kept. Small in-process data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from poptune.analysis.export import best_config_document
from poptune.analysis.final_model import annealed_horizon, describe, final_model
from poptune.analysis.results import TrialRecord
from poptune.analysis.retrain import RetrainPool, seed_list
from poptune.metric import regression_scores
from poptune.trainables import ModelConfig, fit, predict

COSINE = ModelConfig(
    family="MLP2Layer", width_1=16, width_2=8, lr=3e-3, batch_size=128, schedule="cosine"
)
HORIZON = 8


@pytest.fixture(scope="module")
def cosine_winner(small_prepared):
    pool = RetrainPool(small_prepared, epochs=HORIZON, seeds=2, base_seed=7, log=lambda _: None)
    return pool.get(COSINE)


def test_the_horizon_is_the_mean_best_epoch_stretched_by_the_winners_schedule(
    cosine_winner,
) -> None:
    mean = sum(cosine_winner.best_epochs) / len(cosine_winner.best_epochs)
    assert annealed_horizon(cosine_winner) == max(1, round(mean))
    constant = replace(cosine_winner, config=replace(COSINE, schedule="constant"))
    assert annealed_horizon(constant) == max(1, round(1.5 * mean))


def test_a_constant_rate_winners_final_model_decays_on_a_cosine(
    small_prepared, cosine_winner
) -> None:
    constant = replace(cosine_winner, config=replace(COSINE, schedule="constant"))
    final = final_model(constant, small_prepared, base_seed=7, workers=1)
    assert final.config == replace(constant.config, schedule="cosine")
    assert final.epochs == annealed_horizon(constant)
    words = describe(final, constant)
    assert "constant rate replaced by a cosine decay to zero at 1.5×" in words


def test_the_final_model_trains_every_epoch_to_the_horizon_and_keeps_the_last(
    small_prepared, cosine_winner
) -> None:
    horizon = annealed_horizon(cosine_winner)
    final = final_model(cosine_winner, small_prepared, base_seed=7, workers=1)
    assert final.seeds == cosine_winner.seeds == seed_list(2, 7)
    assert final.epochs == horizon
    for member, seed in zip(final.fits, final.seeds, strict=True):
        # No early stop: every epoch of the shortened schedule ran...
        assert [h["epoch"] for h in member.history] == list(range(1, horizon + 1))
        # ...and the weights are the last epoch's: the same seed replayed for that horizon.
        again = fit(COSINE, small_prepared, epochs=horizon, seed=seed, threads=1)
        x = small_prepared.x_val
        np.testing.assert_array_equal(
            predict(member.model, x, member.target_scale),
            predict(again.model, x, again.target_scale),
        )
        val = regression_scores(small_prepared.y_val, predict(member.model, x, member.target_scale))
        assert val["mse"] == pytest.approx(member.history[-1]["val_mse"], rel=1e-4)
    mean = np.mean([predict(f.model, small_prepared.x_test, f.target_scale) for f in final.fits], 0)
    np.testing.assert_allclose(final.test_pred, mean, rtol=1e-6)
    words = describe(final, cosine_winner)
    assert f"for {horizon} epoch(s), its cosine schedule ending at 1×" in words
    assert "seed ensemble" in words
    assert ", ".join(str(e) for e in cosine_winner.best_epochs) in words


def test_best_config_says_how_the_bundled_model_was_trained(small_prepared, cosine_winner) -> None:
    final = final_model(cosine_winner, small_prepared, base_seed=7, workers=1)
    trial = TrialRecord("t1", "TERMINATED", COSINE, ({"epoch": 1, "val_mse": 250.0},), None)
    settings = {"seed": 7, "data": {"synthetic_rows": 10}, "num_samples": 4, "max_epochs": 8,
                "scheduler": "asha", "name": "x"}  # fmt: skip
    meta = {"settings": settings, "data": {"sha256": "0" * 64}}
    reproduce = best_config_document(trial, meta, cosine_winner, final)["reproduce"]
    assert reproduce["epochs"] == HORIZON and reproduce["keep_best_epoch"] is True
    assert reproduce["final_model"] == {
        "schedule": "cosine",
        "epochs": annealed_horizon(cosine_winner),
        "keep_best_epoch": False,
        "seeds": list(cosine_winner.seeds),
    }
    before_analysis = best_config_document(trial, meta)["reproduce"]
    assert "final_model" not in before_analysis and before_analysis["epochs"] == 1
