"""MLflow tracking: `poptune run` with --mlflow-tracking-uri (from a --config file) logs each
trial and the analysis to a local file store, read back with MLflow's own client; without
MLflow installed the option is refused in one line that says what to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from poptune.tracking import ROLE_TAG, SEARCH_ROLE, TRIAL_TAG
from tests.quirks import assert_one_clean_line

mlflow = pytest.importorskip("mlflow", reason="the [mlflow] extra is not installed")

NAME = "tracked"
SAMPLES, EPOCHS = 3, 2


@pytest.fixture(scope="module")
def tracked_run(ray_cluster, ray_token, tmp_path_factory):
    """One small `poptune run` logging to a file: store; its experiment dir and tracking URI."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = (root / "mlruns").as_uri()  # file:///…/mlruns
    (root / "search.yaml").write_text(
        f"mlflow-tracking-uri: {tracking_uri}\nnum-samples: {SAMPLES}\nmax-epochs: {EPOCHS}\n"
    )
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token),
           "RAY_ADDRESS": ""}  # fmt: skip
    args = [sys.executable, "-m", "poptune", "run", "--config", "search.yaml",
            "--address", ray_cluster.address, "--synthetic-rows", "2000", "--max-concurrent", "1",
            "--storage", "runs", "--name", NAME, "--seeds", "2", "--finalists", "1"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, root / "runs" / NAME, tracking_uri


@pytest.fixture(scope="module")
def client(tracked_run):
    from mlflow.tracking import MlflowClient

    _, _, tracking_uri = tracked_run
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for the opt-in
    return MlflowClient(tracking_uri)


def _runs(client):
    experiment = client.get_experiment_by_name(NAME)
    assert experiment is not None, "no MLflow experiment named after the poptune experiment"
    runs = client.search_runs([experiment.experiment_id])
    search = [r for r in runs if r.data.tags.get(ROLE_TAG) == SEARCH_ROLE]
    trials = [r for r in runs if TRIAL_TAG in r.data.tags]
    assert len(search) == 1 and len(trials) + 1 == len(runs)
    return search[0], trials


def test_each_trial_is_a_run_with_its_config_and_one_value_per_epoch(tracked_run, client):
    from ray.tune import ExperimentAnalysis

    _, exp, _ = tracked_run
    search, trials = _runs(client)
    analysis = ExperimentAnalysis(str(exp))
    configs = {t.trial_id: t.config for t in analysis.trials}
    assert len(trials) == len(configs) == SAMPLES
    for run in trials:
        trial_id = run.data.tags[TRIAL_TAG]
        assert run.data.tags["mlflow.parentRunId"] == search.info.run_id  # nested in the UI
        assert run.data.params == {k: str(v) for k, v in configs[trial_id].items()}
        assert run.info.status == "FINISHED"
        curve = analysis.trial_dataframes[trial_id]
        for key in ("val_mse", "train_loss", "val_rmse", "val_mae"):
            history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
            assert [m.step for m in history] == curve["epoch"].tolist()  # one value an epoch
            assert [m.value for m in history] == pytest.approx(curve[key].tolist())


def test_the_analysis_is_the_search_run(tracked_run, client):
    proc, exp, tracking_uri = tracked_run
    search, _ = _runs(client)
    metrics = json.loads((exp / "analysis" / "metrics.json").read_text())
    data = search.data
    assert search.info.status == "FINISHED" and search.info.run_name == NAME
    assert data.params["num_samples"] == str(SAMPLES) and data.params["max_epochs"] == str(EPOCHS)
    winner = {
        k.removeprefix("winner."): v for k, v in data.params.items() if k.startswith("winner.")
    }
    assert winner == {k: str(v) for k, v in metrics["best_config"].items()}
    assert data.metrics["test.rmse"] == pytest.approx(metrics["test"]["rmse"])
    assert data.metrics["test.mae"] == pytest.approx(metrics["test"]["mae"])
    assert data.metrics["final.rmse"] == pytest.approx(metrics["final"]["rmse"])
    for baseline in ("mean", "linear", "hgb", "seed_mlp"):
        expected = metrics["baselines"][baseline]["rmse"]
        assert data.metrics[f"baselines.{baseline}.rmse"] == pytest.approx(expected)
    assert data.metrics["search.trials"] == SAMPLES and data.metrics["search.errored"] == 0
    artifacts = {a.path for a in client.list_artifacts(search.info.run_id)}
    assert {"report.html", "metrics.json", "best_config.json"} <= artifacts
    report = client.download_artifacts(search.info.run_id, "report.html", str(exp.parent))
    assert Path(report).read_text() == (exp / "analysis" / "report.html").read_text()
    assert f"logged the analysis to MLflow run {search.info.run_id}" in proc.stdout
    saved = json.loads((exp / "poptune_search.json").read_text())["settings"]
    assert saved["mlflow_tracking_uri"] == tracking_uri  # a later `poptune analyze` logs there


BLOCK_MLFLOW = """
import importlib.abc, sys

class NoMlflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMlflow())
from poptune.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_mlflow_the_option_fails_at_once_saying_what_to_install(tmp_path):
    args = ["search", "--mlflow-tracking-uri", "sqlite:///mlflow.db", "--synthetic-rows", "300",
            "--storage", str(tmp_path / "runs")]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_MLFLOW, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RAY_ADDRESS": ""},
        timeout=120,
    )
    assert proc.returncode == 2
    assert_one_clean_line(
        proc,
        "--mlflow-tracking-uri sqlite:///mlflow.db: MLflow is not installed; "
        "pip install 'poptune[mlflow]'",
    )
    assert "loading" not in proc.stdout and not (tmp_path / "runs").exists()


def test_an_ended_trials_run_is_not_kept(tmp_path):
    """Ray's callback keeps every trial's run id; poptune's lets an ended trial's go."""
    from types import SimpleNamespace

    from poptune.compat.ray_tune_compat import trial_runs_of
    from poptune.tracking.callback import TrialRuns

    ended = []
    callback = TrialRuns((tmp_path / "mlruns").as_uri(), experiment_name="e", settings={})
    callback.mlflow_util = SimpleNamespace(
        end_run=lambda run_id, status: ended.append((run_id, status)),
        log_params=lambda **kwargs: None,
    )

    class Trial(SimpleNamespace):
        __hash__ = object.__hash__  # Ray's callback keys its runs by the trial

    done, broken, running = (Trial(config={}, local_path=str(tmp_path)) for _ in "abc")
    callback._trial_runs = {done: "r1", broken: "r2", running: "r3"}  # as Ray's setup() starts it
    callback.log_trial_end(done)
    callback.log_trial_end(broken, failed=True)
    assert ended == [("r1", "FINISHED"), ("r2", "FAILED")]
    assert trial_runs_of(callback) == {running: "r3"}
