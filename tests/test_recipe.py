"""The training recipe's parts: the quantile input map, the learning-rate schedule, and keeping
the best epoch's weights."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise

import numpy as np
import pytest
import torch

from poptune.metric import regression_scores
from poptune.trainables import REFERENCE, features, fit, predict
from poptune.trainables.features import KNOTS, QuantileInput, fit_and_map
from poptune.trainables.lr_schedule import learning_rate


def _skewed(rows: int, seed: int) -> torch.Tensor:
    """Three columns like the audio features: long-tailed, half zeros, plain normal."""
    g = np.random.default_rng(seed)
    zeros_then_spread = np.where(g.random(rows) < 0.5, 0.0, g.exponential(1.0, rows) ** 3)
    cols = [g.lognormal(0, 1.5, rows), zeros_then_spread, g.normal(5, 2, rows)]
    return torch.tensor(np.stack(cols, axis=1), dtype=torch.float32)


def test_quantile_map_makes_each_training_feature_standard_normal():
    x = _skewed(20_000, 0)
    out = QuantileInput(3).fit(x)(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    for j in (0, 2):  # continuous columns: close to N(0, 1)
        assert abs(float(out[:, j].mean())) < 0.02
        assert abs(float(out[:, j].std()) - 1) < 0.05
    skew_before = float(((x[:, 0] - x[:, 0].mean()) ** 3).mean() / x[:, 0].std() ** 3)
    skew_after = float((out[:, 0] ** 3).mean())
    assert skew_before > 5 and abs(skew_after) < 0.1


def test_quantile_map_is_monotone_and_ties_land_mid_rank():
    x = _skewed(10_000, 1)
    layer = QuantileInput(3).fit(x)
    probe = torch.linspace(-5, 50, 2_000).unsqueeze(1).repeat(1, 3)
    mapped = layer(probe)
    assert (mapped.diff(dim=0) >= 0).all()  # order kept: a rank map, never a reshuffle
    # Half of column 1 is exactly zero: zero maps to the middle of its ranks (≈ 25th
    # percentile → ≈ -0.67), not to the lowest rank (-3.1).
    zero = layer(torch.zeros(1, 3))[0, 1]
    assert float(zero) == pytest.approx(-0.674, abs=0.05)


def test_quantile_map_of_values_outside_training_range_is_finite_and_bounded():
    x = _skewed(5_000, 2)
    layer = QuantileInput(3).fit(x)
    far = torch.tensor([[-1e9, -1e9, -1e9], [1e9, 1e9, 1e9], [math.nan, 0.0, 0.0]])
    out = layer(far)
    assert torch.isfinite(out[:2]).all() and float(out[:2].abs().max()) < 3.2
    assert out[0, 0] < 0 < out[1, 0]
    assert layer.knots.shape == (3, KNOTS)


def test_constant_schedule_is_the_base_rate():
    assert {learning_rate("constant", 0.01, s, 100) for s in range(100)} == {0.01}


def test_cosine_schedule_warms_up_peaks_and_decays_to_zero():
    rates = [learning_rate("cosine", 0.01, s, 1000) for s in range(1000)]
    warmup = 50  # 5% of the steps
    assert rates[0] == pytest.approx(0.01 / warmup)
    assert all(b > a for a, b in pairwise(rates[:warmup]))
    assert max(rates) == pytest.approx(0.01)
    after = rates[warmup - 1 :]
    assert all(b <= a for a, b in pairwise(after))
    assert rates[-1] < 0.01 * 1e-4
    with pytest.raises(ValueError, match="schedule must be"):
        learning_rate("linear", 0.01, 0, 10)


def test_keep_best_returns_the_best_validation_epochs_weights(small_prepared):
    # A rate this high makes validation error wander, so the best epoch is not the last.
    config = dataclasses.replace(REFERENCE, lr=0.02, batch_size=64)
    last = fit(config, small_prepared, epochs=7, seed=5, threads=1)
    best = fit(config, small_prepared, epochs=7, seed=5, threads=1, keep_best=True)
    assert [h["val_mse"] for h in best.history] == [h["val_mse"] for h in last.history]

    def val_mse(result) -> float:
        pred = predict(result.model, small_prepared.x_val, result.target_scale)
        return regression_scores(small_prepared.y_val, pred)["mse"]

    assert val_mse(best) == pytest.approx(best.best["val_mse"], rel=1e-6)
    assert val_mse(last) == pytest.approx(last.history[-1]["val_mse"], rel=1e-6)
    assert best.best_epoch < len(best.history)  # otherwise this test proves nothing


def test_quantile_knots_come_from_training_rows_only(small_prepared):
    config = dataclasses.replace(REFERENCE, features="quantile")
    a = fit(config, small_prepared, epochs=1, seed=0, threads=1)
    shifted = dataclasses.replace(small_prepared, x_val=small_prepared.x_val + 100)
    b = fit(config, shifted, epochs=1, seed=0, threads=1)
    assert torch.equal(a.model[0].knots, b.model[0].knots)
    expected = torch.quantile(
        torch.from_numpy(small_prepared.x_train).double(),
        torch.linspace(0, 1, KNOTS, dtype=torch.float64),
        0,
    ).T.float()
    assert torch.allclose(a.model[0].knots, expected)


def test_a_reused_worker_maps_the_same_rows_once_and_trains_the_same_bits(small_prepared):
    """The second model on the same training rows gets the first one's knots and mapped rows
    (no second fit), and trains exactly as it would have from scratch; other rows are fitted."""
    config = dataclasses.replace(REFERENCE, features="quantile", dropout=0.0)
    x = torch.from_numpy(small_prepared.x_train)
    first = fit_and_map(QuantileInput(x.shape[1]), x, 256)
    again = fit_and_map(QuantileInput(x.shape[1]), x.clone(), 256)  # same content, new tensor
    assert again is first
    other = fit_and_map(QuantileInput(x.shape[1]), x + 1.0, 256)
    assert other is not first and not torch.equal(other, first)
    fresh_map = QuantileInput(x.shape[1]).fit(x)
    assert torch.equal(first, torch.cat([fresh_map(part) for part in x.split(256)]))

    runs = [fit(config, small_prepared, epochs=2, seed=3, threads=1) for _ in range(2)]
    features._last = None  # the next fit starts from scratch
    scratch = fit(config, small_prepared, epochs=2, seed=3, threads=1)
    for run in runs:
        assert [h["val_mse"] for h in run.history] == [h["val_mse"] for h in scratch.history]
        weights, expected = run.model.state_dict(), scratch.model.state_dict()
        assert all(torch.equal(weights[k], expected[k]) for k in expected)


def test_a_hooked_model_fits_the_map_without_mapping_the_training_rows(small_prepared):
    """With a forward hook, `fit` calls the whole model, which maps each batch itself: the knots
    are fitted as for a plain model, no training rows are mapped up front, and it trains the
    same, bit for bit: the map is elementwise and hands the next layer row-major rows either way,
    so its matmuls get the same operands. A later plain model on the same rows maps them then,
    with the same knots."""
    config = dataclasses.replace(REFERENCE, features="quantile", dropout=0.0)
    features._last = None
    plain = fit(config, small_prepared, epochs=2, seed=3, threads=1)
    features._last = None
    hook = torch.nn.modules.module.register_module_forward_hook(lambda *_: None)
    try:
        hooked = fit(config, small_prepared, epochs=2, seed=3, threads=1)
    finally:
        hook.remove()
    assert features._last is not None and features._last[2] is None  # fitted, not mapped
    assert torch.equal(hooked.model[0].knots, plain.model[0].knots)
    assert [h["val_mse"] for h in hooked.history] == [h["val_mse"] for h in plain.history]

    x = torch.from_numpy(small_prepared.x_train)
    mapped = fit_and_map(QuantileInput(x.shape[1]), x, 256)
    assert torch.equal(mapped, torch.cat([plain.model[0](part) for part in x.split(256)]))
    assert features._last[2] is mapped  # kept for the next model on these rows
