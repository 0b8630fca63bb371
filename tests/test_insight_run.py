"""One small `poptune run --ensemble 2` through the session's Ray cluster, then everything a user
looks at afterwards: TensorBoard event files, the stored Optuna study, the report and the bundle.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from poptune.analysis.results import TrialRecord, read_results
from poptune.data import load_tracks, synthetic_tracks
from poptune.driver.tensorboard import BEST_METRIC, CURVES
from poptune.layout import STUDY_FILE
from poptune.trainables.bundle import load_bundle

pytestmark = pytest.mark.ray

MAX_EPOCHS = 3
TRIALS = 6
CONTRACT_KEYS = {"test", "val", "baselines", "best_config", "data", "search"}


@pytest.fixture(scope="module")
def run(ray_cluster, ray_token, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("insight")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    # grace 1 with max 3 epochs: ASHA stops most trials after one epoch, so the study and the
    # TensorBoard rows must both account for trials stopped early.
    args = [sys.executable, "-m", "poptune", "run", "--address", ray_cluster.address,
            "--synthetic-rows", "2000", "--num-samples", str(TRIALS),
            "--max-epochs", str(MAX_EPOCHS), "--grace-period", "1", "--seeds", "2",
            "--ensemble", "2", "--storage", str(root), "--name", "insight"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "insight"


@pytest.fixture(scope="module")
def trials(run) -> tuple[TrialRecord, ...]:
    return read_results(run).trials


def _events(trial_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(trial_dir))
    acc.Reload()
    return acc


# ---------------------------------------------------------------- TensorBoard


def test_every_trial_has_curves_and_an_hparams_row_with_its_best(run, trials):
    assert len(trials) == TRIALS
    for trial in trials:
        (trial_dir,) = run.glob(f"*_{trial.trial_id}")
        assert trial_dir.name == f"{trial.config.family}_{trial.trial_id}"
        acc = _events(trial_dir)
        tags = set(acc.Tags()["scalars"])
        assert set(CURVES) | {BEST_METRIC} <= tags
        assert not [t for t in tags if t.startswith("ray/tune")]  # Tune's own TBX logger is off
        curve = [e.value for e in acc.Scalars("val_mse")]
        assert curve == pytest.approx([h["val_mse"] for h in trial.history])
        assert acc.Scalars(BEST_METRIC)[-1].value == pytest.approx(min(curve))
        assert acc.Scalars(BEST_METRIC)[-1].value == pytest.approx(trial.best_val_mse)
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        hparams = {
            k: v.string_value if v.HasField("string_value") else v.number_value
            for k, v in start.hparams.items()
        }
        assert hparams == pytest.approx(trial.config.to_dict())
        assert metadata.SESSION_END_INFO_TAG in content
        assert (trial_dir / "result.json").is_file()  # what analysis reads is still written


def test_trials_stopped_early_are_in_tensorboard_too(run, trials):
    stopped = [t for t in trials if t.epochs < MAX_EPOCHS]
    assert stopped, "ASHA with grace 1 should stop some of the trials"
    for trial in stopped:
        (trial_dir,) = run.glob(f"*_{trial.trial_id}")
        assert _events(trial_dir).Scalars("stopped_early")[-1].value == 1.0


# ---------------------------------------------------------------- the stored Optuna study


def test_the_stored_study_has_every_trial_with_honest_states(run, trials):
    study = optuna.load_study(study_name="insight", storage=f"sqlite:///{run / STUDY_FILE}")
    stored = study.get_trials()
    assert len(stored) == TRIALS
    by_config = {json.dumps(t.config.to_dict(), sort_keys=True): t for t in trials}
    pruned = 0
    for ot in stored:
        tune_trial = by_config[json.dumps(ot.params, sort_keys=True)]
        if tune_trial.epochs < MAX_EPOCHS:
            pruned += 1
            # ASHA's stop: pruned, valued at the epoch it was stopped on (TPE learns from it).
            assert ot.state == TrialState.PRUNED
            assert ot.value == pytest.approx(tune_trial.history[-1]["val_mse"])
        else:
            assert ot.state == TrialState.COMPLETE
            assert ot.value == pytest.approx(tune_trial.best_val_mse)
        assert ot.intermediate_values == pytest.approx(
            {h["epoch"]: h["val_mse"] for h in tune_trial.history}
        )
    assert pruned >= 1
    assert sum(t.state == TrialState.COMPLETE for t in stored) == TRIALS - pruned


# ---------------------------------------------------------------- report, metrics, bundle


def test_metrics_gain_ensemble_and_families_and_keep_the_contract(run):
    m = json.loads((run / "analysis" / "metrics.json").read_text())
    assert set(m) >= CONTRACT_KEYS | {"ensemble", "families", "model", "drivers"}
    ens = m["ensemble"]
    assert ens["k"] == 2 and ens["rmse"] > 0 and ens["mae"] > 0
    assert ens["beats_winner"] == (ens["rmse"] < ens["winner_rmse"])
    # The winner's family row is the winner itself, retrained with the same seeds.
    winner_family = m["families"][m["best_config"]["family"]]
    assert winner_family["config"] == m["best_config"]
    assert winner_family["test"]["rmse"] == pytest.approx(m["test"]["rmse"])
    assert ens["winner_rmse"] == pytest.approx(m["test"]["rmse"])


def test_report_html_is_self_contained_with_every_plot(run):
    analysis = run / "analysis"
    metrics = json.loads((analysis / "metrics.json").read_text())
    html = (analysis / "report.html").read_text()
    md = (analysis / "report.md").read_text()
    assert len(metrics["plots"]) == 8
    for rel in metrics["plots"]:
        png = (analysis / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({rel})" in md
        assert base64.b64encode(png).decode() in html  # embedded, byte for byte
    assert 'src="plots/' not in html
    assert "## Ensemble" in md and "single winner" in md
    assert "## Families" in md and "## What drives popularity" in md


def test_predict_from_the_run_bundle(run, cli, tmp_path):
    csv = tmp_path / "new.csv"
    synthetic_tracks(50, seed=99).drop(columns=["popularity"]).to_csv(csv, index=False)
    r = cli("predict", run / "analysis" / "model", "--data", csv, "--out", tmp_path / "p.csv")
    assert r.code == 0, r.err
    pred = pd.read_csv(tmp_path / "p.csv")
    frame = load_tracks(csv, require_target=False)
    expected = load_bundle(run / "analysis" / "model").predict(frame)
    assert list(pred.columns) == ["track_id", "popularity_pred"]
    np.testing.assert_array_equal(pred["popularity_pred"].to_numpy(), expected)
    assert pred["popularity_pred"].between(0, 100).all()
