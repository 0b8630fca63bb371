"""The analysis pieces behind report.md/report.html, each on small in-process data (no Ray)."""

from __future__ import annotations

import base64
import io

import numpy as np
import optuna
import pytest
import torch
from matplotlib.image import imread

from poptune.analysis.config_ensemble import ensemble
from poptune.analysis.finalists import family_table, finalists
from poptune.analysis.importance import MIN_TRIALS, family_importances
from poptune.analysis.profile import (
    BANDS,
    SKEWED,
    band_errors,
    correlations,
    partial_dependence,
    skewed_values,
)
from poptune.analysis.report import plots
from poptune.analysis.report.html import markdown_to_html
from poptune.analysis.results import SearchResults, TrialRecord, top_distinct
from poptune.analysis.retrain import RetrainPool, seed_rmses
from poptune.data import FEATURES, TARGET
from poptune.spaces import define_space
from poptune.trainables import ModelConfig, fit

SMALL = {"lr": 3e-3, "batch_size": 128, "weight_decay": 1e-6}
CONFIGS = [
    ModelConfig(family="MLP1Layer", width_1=16, **SMALL),
    ModelConfig(family="MLP2Layer", width_1=16, width_2=8, **SMALL),
    ModelConfig(family="MLP1Layer", width_1=32, **SMALL),
    ModelConfig(family="MLP2LayerBatchNorm", width_1=16, width_2=8, **SMALL),
]


def _record(trial_id: str, config: ModelConfig, curve: list[float]) -> TrialRecord:
    history = tuple(
        {"epoch": i, "val_mse": v, "diverged": False} for i, v in enumerate(curve, start=1)
    )
    return TrialRecord(trial_id, "TERMINATED", config, history, node_id=None)


@pytest.fixture(scope="module")
def results() -> SearchResults:
    return SearchResults(
        trials=(
            _record("a", CONFIGS[0], [300.0, 200.0]),  # best overall, best epoch 2
            _record("b", CONFIGS[1], [260.0, 240.0]),
            _record("a2", CONFIGS[0], [400.0, 250.0]),  # same config again: not a new member
            _record("c", CONFIGS[2], [230.0, 210.0]),
            _record("d", CONFIGS[3], [500.0]),  # stopped early
        )
    )


@pytest.fixture(scope="module")
def pool(small_prepared) -> RetrainPool:
    return RetrainPool(small_prepared, epochs=3, seeds=2, base_seed=0, log=lambda _: None)


def _is_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    h, w = imread(io.BytesIO(data), format="png").shape[:2]
    return w, h


# ---------------------------------------------------------------- families and ensemble


def test_family_table_has_each_family_once_best_first(results, pool):
    rows = family_table(results, pool)
    assert sorted(r.family for r in rows) == ["MLP1Layer", "MLP2Layer", "MLP2LayerBatchNorm"]
    # Ordered by the retrained models' mean validation error, not by one search trial's.
    means = [r.retrained.val_mse.mean for r in rows]
    assert means == sorted(means)
    by_family = {r.family: r for r in rows}
    assert by_family["MLP1Layer"].trials == 3 and by_family["MLP1Layer"].best.trial_id == "a"
    # Fair: the BatchNorm trial ASHA stopped after 1 epoch is retrained for the same horizon as
    # the others, and each seed keeps its best validation epoch.
    assert {r.retrained.epochs for r in rows} == {3}
    for r in rows:
        assert all(1 <= e <= 3 for e in r.retrained.best_epochs)
        assert r.retrained.val_mse.mean == pytest.approx(
            np.mean([f.best["val_mse"] for f in r.retrained.fits])
        )
    d = by_family["MLP1Layer"].to_dict()
    lo, hi = d["test"]["rmse_ci95"]
    assert lo <= d["test"]["rmse"] <= hi and d["test"]["n_seeds"] == 2
    assert d["config"] == CONFIGS[0].to_dict()


def test_finalists_are_the_top_configs_and_family_bests_chosen_by_mean_val(results, pool):
    rows = finalists(results, 2, pool)
    by_trial = {f.trial.trial_id: f for f in rows}
    # Top 2 distinct configs (a, then c: a2 repeats a's config), then the best of each family
    # not among them (b for MLP2Layer, d for MLP2LayerBatchNorm).
    assert set(by_trial) == {"a", "c", "b", "d"}
    assert by_trial["a"].why == by_trial["c"].why == "top-k"
    assert by_trial["b"].why == by_trial["d"].why == "family best"
    assert by_trial["a"].rank_in_search == 1 and by_trial["c"].rank_in_search == 2
    means = [f.retrained.val_mse.mean for f in rows]
    assert means == sorted(means)  # the winner (first) has the lowest mean validation error
    d = rows[0].to_dict()
    assert d["n"] == 2 and d["val_mse_ci95"][0] <= d["val_mse_mean"] <= d["val_mse_ci95"][1]
    assert d["config"] == rows[0].retrained.config.to_dict()
    # Retrains are shared: the pool returns the very same object for a finalist's config.
    assert pool.get(rows[0].retrained.config) is rows[0].retrained


def test_top_distinct_skips_a_repeated_config(results):
    assert [t.trial_id for t in top_distinct(results, 3)] == ["a", "c", "b"]
    assert len(top_distinct(results, 10)) == 4


def test_ensemble_of_one_is_the_winner_and_k_members_average_seed_by_seed(
    results, pool, small_prepared
):
    single = ensemble(results, 1, pool, small_prepared)
    assert single.k == 1
    assert single.rmse.mean == pytest.approx(single.winner_rmse.mean)
    assert single.gain.mean == pytest.approx(0.0, abs=1e-9)

    three = ensemble(results, 3, pool, small_prepared)
    assert three.k == 3 and three.n_seeds == 2
    winner = pool.get(CONFIGS[0])
    assert three.winner_rmse.mean == pytest.approx(np.mean(seed_rmses(winner, small_prepared)))
    assert three.gain.mean == pytest.approx(three.winner_rmse.mean - three.rmse.mean)
    assert three.beats_winner == (three.rmse.mean < three.winner_rmse.mean)
    d = three.to_dict()
    assert d["k"] == 3 and {"rmse", "mae"} <= set(d)
    assert [m["family"] for m in d["members"]] == ["MLP1Layer", "MLP1Layer", "MLP2Layer"]

    more = ensemble(results, 9, pool, small_prepared)
    assert more.k == 4 and more.k_requested == 9


# ---------------------------------------------------------------- bands and profile


def test_band_errors_by_hand():
    y = np.array([0, 5, 10, 29, 50, 69.9, 70, 100], dtype=float)
    pred = np.array([4, 5, 20, 29, 40, 70, 130, 90], dtype=float)  # 130 is clipped to 100
    bands = {b.label: b for b in band_errors(y, pred)}
    assert list(bands) == [f"{lo}–{hi}" for lo, hi in BANDS]
    assert bands["0–10"].n == 2 and bands["0–10"].mae == pytest.approx(2.0)
    assert bands["10–30"].n == 2 and bands["10–30"].rmse == pytest.approx((100 / 2) ** 0.5)
    assert bands["30–50"].n == 0 and bands["30–50"].rmse is None
    assert bands["50–70"].n == 2 and bands["50–70"].bias == pytest.approx((-10 + 0.1) / 2)
    assert bands["70–100"].n == 2 and bands["70–100"].bias == pytest.approx((30 - 10) / 2)


def test_correlations_match_the_raw_frame(small_frame, small_prepared):
    corr = correlations(small_prepared)
    raw = small_frame.drop_duplicates("track_id")
    for name in FEATURES:
        assert corr[name] == pytest.approx(raw[name].corr(raw[TARGET]), abs=1e-4)


def test_skewed_values_come_back_in_raw_units(small_frame, small_prepared):
    values = skewed_values(small_prepared)
    assert tuple(values) == SKEWED
    raw = small_frame.drop_duplicates("track_id")["duration_ms"].to_numpy()
    assert np.sort(values["duration_ms"]) == pytest.approx(np.sort(raw), rel=1e-5)


def test_partial_dependence_is_flat_for_a_feature_the_model_cannot_see(small_prepared):
    result = fit(CONFIGS[0], small_prepared, epochs=2, seed=0)
    blind = FEATURES.index("tempo")
    with torch.no_grad():
        result.model[0].weight[:, blind] = 0.0  # the first layer ignores tempo
    found = partial_dependence(result.model, result.target_scale, small_prepared, grid=9, rows=200)
    curves = {c.feature: c for c in found}
    assert curves["tempo"].effect == pytest.approx(0.0, abs=1e-4)
    assert max(c.effect for c in curves.values()) > 0.5
    effects = [c.effect for c in found]  # returned largest effect first
    assert effects == sorted(effects, reverse=True)
    loud = curves["loudness"]
    assert np.all((loud.mean_pred >= 0) & (loud.mean_pred <= 100))
    # The sweep is reported in raw units: loudness in dB, inside the data's own range.
    assert -60 <= loud.grid.min() < loud.grid.max() <= 0


# ---------------------------------------------------------------- importance


def _study_with(per_family: dict[str, int]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(0))
    for family, n in per_family.items():
        for i in range(n):
            study.enqueue_trial({"family": family})
            trial = study.ask()
            define_space(trial)
            # A value that depends on lr only: lr must come out as the dominant parameter.
            value = 100 + 1e4 * trial.params["lr"]
            if i % 3 == 2:  # some stopped early, as ASHA would
                trial.report(value, 1)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, value)
    return study


def test_importance_per_family_keeps_family_specific_keys():
    study = _study_with({"MLP3LayerDropout": 8, "MLP1Layer": MIN_TRIALS - 1})
    entries = {e.family: e for e in family_importances(study, seed=0)}
    dropout = entries["MLP3LayerDropout"]
    assert dropout.trials == 8 and dropout.pruned == 2
    assert set(dropout.importances) == {
        "width_1",
        "width_2",
        "width_3",
        "dropout",
        "lr",
        "batch_size",
        "weight_decay",
        "features",
        "schedule",
    }
    assert max(dropout.importances, key=dropout.importances.get) == "lr"
    assert sum(dropout.importances.values()) == pytest.approx(1.0)
    few = entries["MLP1Layer"]
    assert few.importances is None and f"needs {MIN_TRIALS}" in few.note


# ---------------------------------------------------------------- plots and html


def test_every_plot_renders_a_png(results, small_prepared):
    study = _study_with({"MLP3LayerDropout": 6, "MLP2Layer": 2})
    result = fit(CONFIGS[0], small_prepared, epochs=1, seed=0)
    curves = partial_dependence(result.model, result.target_scale, small_prepared, rows=100)
    y = small_prepared.y_test
    pred = y + np.random.default_rng(0).normal(0, 10, len(y))
    pngs = {
        "history": plots.optimization_history(
            [1, 2, 3],
            [300.0, 200.0, 250.0],
            ["MLP1Layer", "MLP2Layer", "MLP1Layer"],
            [False, True, True],
        ),
        "family": plots.family_best({"MLP1Layer": [200.0, 250.0], "MLP2Layer": [240.0]}),
        "importance": plots.importance(family_importances(study)),
        "importance_none": plots.importance([]),
        "pred": plots.predicted_vs_actual(y, pred, 10.0),
        "pred_binned": plots.predicted_vs_actual(np.tile(y, 40), np.tile(pred, 40), 10.0),
        "bands": plots.error_by_band(band_errors(y, pred)),
        "corr": plots.correlations(correlations(small_prepared)),
        "hist": plots.histograms(skewed_values(small_prepared)),
        "pd": plots.partial_dependence(curves[:6]),
    }
    for name, png in pngs.items():
        w, h = _is_png(png)
        assert w >= 400 and h >= 60, name


def test_html_embeds_report_images_and_nothing_from_outside(tmp_path):
    (tmp_path / "plots").mkdir()
    png = plots.family_best({"MLP1Layer": [1.0]})
    (tmp_path / "plots" / "a.png").write_bytes(png)
    (tmp_path.parent / "secret.png").write_bytes(png)
    md = "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![A](plots/a.png)\n\n![S](../secret.png)\n"
    html = markdown_to_html(md, tmp_path)
    assert "<table>" in html and "<h1>Title</h1>" in html
    encoded = base64.b64encode(png).decode()
    assert html.count("data:image/png;base64,") == 1
    assert f'src="data:image/png;base64,{encoded}"' in html
    assert 'src="../secret.png"' in html  # left as a link, never read
