"""The sampler benchmark's machinery (benchmarks/sampler.py): its bowl has the optimum it states
over every key of the space, and a short search through it finds values near that optimum and
times only the suggestions made once the window is full."""

from __future__ import annotations

import math

import pytest

from benchmarks import sampler as bench

OPTIMUM = {
    "family": "MLP3LayerDropout",
    "width_1": 256,
    "width_2": 64,
    "width_3": 32,
    "dropout": 0.15,
    "lr": 10**-2.5,
    "batch_size": 256,
    "weight_decay": 1e-4,
    "features": "quantile",
    "schedule": "cosine",
}


@pytest.mark.parametrize(
    "key, away",
    [("family", "MLP2Layer"), ("width_3", 8), ("dropout", 0.4), ("lr", 1e-3),
     ("batch_size", 2048), ("weight_decay", 1e-8), ("features", "robust"),
     ("schedule", "constant")],
)  # fmt: skip
def test_the_bowl_is_lowest_at_its_stated_optimum(key, away):
    assert bench.true_value(OPTIMUM) == pytest.approx(196.0)
    assert bench.true_value({**OPTIMUM, key: away}) > 196.0 + 0.1


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_short_search_closes_in_and_times_only_the_full_window(monkeypatch):
    monkeypatch.setattr(bench, "CHECKPOINTS", (150, 330))
    run = bench.search(batched=True, seed=0, in_flight=17, trials=330)
    assert 196.0 <= run.best_at[330] <= run.best_at[150] < 205.0
    assert run.ms_per_suggestion > 0  # the last ~60 suggestions, with 250+ finished
    short = bench.search(batched=True, seed=0, in_flight=17, trials=150)
    assert math.isnan(short.ms_per_suggestion)  # the window never filled: nothing timed
