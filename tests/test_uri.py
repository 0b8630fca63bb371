"""Experiment locations: a path below a URI goes before its query string, everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from poptune import uri
from poptune.driver.settings import SearchSettings
from poptune.errors import UsageError
from poptune.storage.location import ExperimentLocation

MINIO = "s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http"


def test_join_inserts_the_path_before_the_query_string():
    assert uri.join(MINIO, "exp", "poptune_search.json") == (
        "s3://bucket/runs/exp/poptune_search.json?endpoint_override=127.0.0.1:9000&scheme=http"
    )
    assert uri.join("s3://bucket/runs/", "/exp") == "s3://bucket/runs/exp"
    assert uri.join("runs", "exp", "analysis") == "runs/exp/analysis"
    assert uri.join("/tmp/a?b", "c") == "/tmp/a?b/c"  # a path's '?' is just a character


def test_the_experiment_uri_keeps_the_endpoint_options_at_the_end():
    settings = SearchSettings(storage=MINIO, name="exp")
    assert settings.experiment_uri == (
        "s3://bucket/runs/exp?endpoint_override=127.0.0.1:9000&scheme=http"
    )
    assert not settings.storage_is_local and uri.is_remote(settings.experiment_uri)
    assert SearchSettings(storage="runs", name="exp").experiment_uri == str(
        Path("runs").resolve() / "exp"
    )


def test_messages_hide_secret_options():
    shown = uri.shown("s3://b/r?access_key=AK&secret_key=SECRET&endpoint_override=h:9000")
    assert "SECRET" not in shown and "AK" not in shown
    assert shown.startswith("s3://b/r?") and "endpoint_override=h:9000" in shown
    assert uri.shown("/plain/path") == "/plain/path"


def test_a_remote_experiment_is_copied_below_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("POPTUNE_CACHE_DIR", str(tmp_path))
    copy = ExperimentLocation(uri.join(MINIO, "exp")).local_copy()
    assert copy == tmp_path / "experiments/s3/bucket/runs/exp"
    never_above = ExperimentLocation("gs://b/../x/./y").local_copy()
    assert never_above == tmp_path / "experiments/gs/b/x/y"


def test_mlflow_tracking_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = SearchSettings(mlflow_tracking_uri="mlruns").mlflow_tracking_uri
    assert folder == (tmp_path / "mlruns").resolve().as_uri()  # absolute: analyze finds it
    for kept in ("sqlite:///mlflow.db", "http://127.0.0.1:5000", "file:///x/mlruns", "databricks"):
        assert SearchSettings(mlflow_tracking_uri=kept).mlflow_tracking_uri == kept
    with pytest.raises(UsageError, match="scheme 'ftp' is not supported; use a local folder"):
        SearchSettings(mlflow_tracking_uri="ftp://host/x")
    with pytest.raises(UsageError, match="--mlflow-tracking-uri must be a folder or a URI"):
        SearchSettings(mlflow_tracking_uri=" ")
