"""`poptune run` through Ray, as a user runs it: files and numbers that must come out right."""

from __future__ import annotations

import json
import math

import pytest

from poptune.data import FEATURES
from poptune.trainables import ModelConfig

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def finished_run(ray_cluster, ray_token, tmp_path_factory):
    """One small search + analysis on the session cluster, shared by the tests below."""
    import os
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    args = [sys.executable, "-m", "poptune", "run", "--address", ray_cluster.address,
            "--synthetic-rows", "3000", "--num-samples", "5", "--max-epochs", "3",
            "--storage", str(root / "runs"), "--name", "e2e", "--seeds", "2"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    return proc, root / "runs" / "e2e"


def test_run_exits_zero_and_prints_the_table(finished_run):
    proc, _ = finished_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in ("poptune final model", "poptune winner", "seed_mlp", "hgb", "linear", "mean"):
        assert label in proc.stdout
    assert "finalists (retrained; the winner is the lowest mean val MSE)" in proc.stdout
    assert "[  5/5]" in proc.stdout  # one progress line per trial


def test_metrics_json_has_the_contract_keys_and_sane_numbers(finished_run):
    _, exp = finished_run
    m = json.loads((exp / "analysis" / "metrics.json").read_text())
    assert set(m) >= {"test", "val", "baselines", "best_config", "data", "search"}
    test = m["test"]
    assert test["n_seeds"] == 2
    lo, hi = test["rmse_ci95"]
    assert lo <= test["rmse"] <= hi
    assert 0 < test["mae"] < test["rmse"] < 40
    for name in ("mean", "linear", "hgb", "seed_mlp"):
        assert set(m["baselines"][name]) == {"rmse", "mae"}
        assert all(math.isfinite(v) and v > 0 for v in m["baselines"][name].values())
    # A tree and a trained MLP must beat predicting the mean on this data.
    assert m["baselines"]["hgb"]["rmse"] < m["baselines"]["mean"]["rmse"]
    assert test["rmse"] < m["baselines"]["mean"]["rmse"]
    data = m["data"]
    assert data["rows_raw"] == 3000
    assert data["train"] + data["val"] + data["test"] == data["rows_used"] < 3000  # deduped
    assert m["search"]["trials"] == 5
    assert m["search"]["terminated"] + m["search"]["errored"] == 5
    assert m["search"]["wall_s"] > 0
    ModelConfig.from_dict(m["best_config"])  # a valid config, by the same rules as the space


def test_best_config_json_reproduces_the_winner(finished_run):
    _, exp = finished_run
    doc = json.loads((exp / "best_config.json").read_text())
    reproduce = doc.pop("reproduce")
    metrics = json.loads((exp / "analysis" / "metrics.json").read_text())
    assert ModelConfig.from_dict(doc).to_dict() == metrics["best_config"]
    assert reproduce["val_mse"] == pytest.approx(metrics["val"]["mse"])
    # After analysis: the finalists' horizon (the search's max epochs), each seed keeping its
    # best validation epoch, with the seeds the winner was chosen with.
    assert reproduce["epochs"] == 3 and reproduce["keep_best_epoch"] is True
    assert len(reproduce["seeds"]) == 2 and all(1 <= e <= 3 for e in reproduce["best_epochs"])
    assert reproduce["data"]["sha256"] == metrics["data"]["sha256"]
    assert reproduce["data"]["synthetic"] is True
    assert "torch" in reproduce["versions"] and "ray" in reproduce["versions"]


def test_finalists_final_model_and_fair_family_table(finished_run):
    _, exp = finished_run
    m = json.loads((exp / "analysis" / "metrics.json").read_text())
    finalists = m["finalists"]
    assert finalists and m["best_config"] == finalists[0]["config"]
    means = [f["val_mse_mean"] for f in finalists]
    assert means == sorted(means)  # chosen by mean validation error over the seeds
    for f in finalists:
        lo, hi = f["val_mse_ci95"]
        assert f["n"] == 2 and lo <= f["val_mse_mean"] <= hi
    assert m["val"]["mse_retrained"] == pytest.approx(finalists[0]["val_mse_mean"])
    assert m["test"]["rmse"] == pytest.approx(finalists[0]["test_rmse_mean"])
    # The final model is the winner's 2-seed ensemble, and it is what the bundle holds: the
    # scores computed from the averaged seed predictions equal the bundled model's.
    final = m["final"]
    assert final["members"] == 2 and "seed ensemble" in final["what"]
    assert final["rmse"] == pytest.approx(m["model"]["test_rmse"], rel=1e-5)
    assert final["mae"] == pytest.approx(m["model"]["test_mae"], rel=1e-5)
    bundle = json.loads((exp / "analysis" / "model" / "bundle.json").read_text())
    assert bundle["members"] == 2
    # Fair family table: every family retrained for the same horizon, whatever ASHA did.
    assert {row["epochs"] for row in m["families"].values()} == {3}
    report = (exp / "analysis" / "report.md").read_text()
    assert "## Finalists" in report and "**winner**" in report


def test_first_trial_is_the_reference_model(finished_run):
    """The search starts from the bar it must beat, so its winner can only be at least as good."""
    _, exp = finished_run
    from poptune.analysis.results import read_results

    results = read_results(exp)
    families = [t.config for t in results.trials]
    assert any(
        c.family == "MLP3LayerDropout" and c.widths == (128, 64, 32) and c.lr == 0.001
        for c in families
    )
    assert len(FEATURES) == 10


def test_export_writes_yaml_and_json(finished_run, cli, tmp_path):
    _, exp = finished_run
    import yaml

    r = cli("export", exp, "--out", tmp_path / "best.yaml")
    assert r.code == 0, r.err
    loaded = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert loaded == json.loads((exp / "best_config.json").read_text())
    r = cli("export", exp)
    assert r.code == 0 and json.loads(r.out)["family"] == loaded["family"]
    r = cli("export", exp, "--out", tmp_path / "best.txt")
    assert r.code == 2 and "use a .json, .yaml or .yml" in r.err


def test_search_refuses_to_overwrite_an_experiment(finished_run, cli):
    _, exp = finished_run
    r = cli("search", "--storage", exp.parent, "--name", "e2e", "--synthetic-rows", "500")
    assert r.code == 2
    assert "already exists" in r.err and "--resume" in r.err and "--force" in r.err
    assert "Traceback" not in r.err
