"""Every command that takes a folder takes it relative to where the user stands, as they type it
(`poptune analyze runs/kaggle`): the experiment, its model bundle and the files around them."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

import poptune
from poptune.data import synthetic_tracks
from tests.shared_search import SAMPLES, asha_experiment

pytestmark = pytest.mark.ray


@pytest.fixture
def copied(ray_cluster, ray_token, tmp_path_factory, tmp_path):
    """A copy of the shared finished search at <cli's cwd>/s1/q, so analyzing it changes only
    the copy."""
    source = asha_experiment(ray_cluster, ray_token, tmp_path_factory)
    shutil.copytree(source, tmp_path / "s1" / "q")
    return tmp_path


def test_analyze_export_and_predict_take_relative_paths(copied, cli, monkeypatch):
    r = cli("analyze", "s1/q", "--seeds", "1", "--finalists", "1")
    assert r.code == 0, r.err
    metrics = json.loads((copied / "s1/q/analysis/metrics.json").read_text())
    assert metrics["search"]["trials"] == SAMPLES

    r = cli("export", "s1/q", "--out", "best.yaml")
    assert r.code == 0, r.err
    exported = yaml.safe_load((copied / "best.yaml").read_text())
    assert exported["family"] == metrics["best_config"]["family"]

    synthetic_tracks(40, seed=5).drop(columns=["popularity"]).to_csv(
        copied / "new.csv", index=False
    )
    r = cli("predict", "s1/q/analysis/model", "--data", "new.csv", "--out", "p.csv")
    assert r.code == 0, r.err
    assert len(pd.read_csv(copied / "p.csv")) == 40

    monkeypatch.chdir(copied / "s1")  # from Python too, relative to the working directory
    experiment = poptune.load("q")
    assert len(experiment.trials) == SAMPLES
    assert experiment.metrics["search"]["trials"] == SAMPLES
