"""Experiments in S3, end to end, against a real S3-compatible server on 127.0.0.1 (moto's).

Two ways of naming the endpoint, as users do: in the URI, as MinIO and R2 users write it
(``s3://bucket/runs?endpoint_override=HOST:PORT&scheme=http``), and in ``AWS_ENDPOINT_URL``.
Every command runs on such a URI: search, --resume, export, analyze, run, and search into an
existing experiment (refused). Trials run on the session Ray cluster, whose workers write their
checkpoints to the bucket themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localray.cluster import free_port
from localray.processes import kill_pids

pytest.importorskip("moto", reason="moto[server] (a dev extra) is not installed")
pyarrow_fs = pytest.importorskip("pyarrow.fs")

pytestmark = pytest.mark.ray

BUCKET = "poptune-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
SMALL = ("--synthetic-rows", "2000", "--max-epochs", "2", "--max-concurrent", "1")
ANALYSIS = ("--seeds", "2", "--finalists", "1")


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1 with an empty bucket; yields HOST:PORT."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_it_answers(server, f"http://127.0.0.1:{port}/", log)
        _filesystem(f"127.0.0.1:{port}", allow_bucket_creation=True).create_dir(BUCKET)
        yield f"127.0.0.1:{port}"
    finally:
        kill_pids([server.pid])
        server.wait(timeout=30)


def _wait_until_it_answers(server: subprocess.Popen, url: str, log: Path) -> None:
    while True:  # bounded by the test's timeout; a server that exits ends it at once
        assert server.poll() is None, f"moto server exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=0.2)  # a pause that ends at once if the server exits


def _filesystem(endpoint: str, **options) -> pyarrow_fs.S3FileSystem:
    return pyarrow_fs.S3FileSystem(
        endpoint_override=endpoint, scheme="http", access_key="testing", secret_key="testing",
        region="us-east-1", **options,
    )  # fmt: skip


def _keys(endpoint: str, prefix: str) -> list[str]:
    selector = pyarrow_fs.FileSelector(f"{BUCKET}/{prefix}", recursive=True)
    infos = _filesystem(endpoint).get_file_info(selector)
    return sorted(i.path.removeprefix(f"{BUCKET}/{prefix}/") for i in infos if i.is_file)


def _read(endpoint: str, key: str) -> bytes:
    with _filesystem(endpoint).open_input_stream(f"{BUCKET}/{key}") as stream:
        return stream.read()


@pytest.fixture
def poptune_s3(ray_cluster, ray_env, tmp_path):
    """Run `poptune ARGS` in a subprocess with dummy AWS credentials and its own cache."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **ray_env, **CREDENTIALS, **(env or {}),
                    "POPTUNE_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
        for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            if key not in (env or {}):
                full_env.pop(key, None)
        return subprocess.run(
            [sys.executable, "-m", "poptune", *args],
            capture_output=True, text=True, cwd=tmp_path, env=full_env, timeout=600,
        )  # fmt: skip

    return run


def _check_experiment(endpoint: str, prefix: str, trials: int, *, analyzed: bool) -> None:
    """What the bucket holds: poptune's files at their places, nothing under a mangled name,
    one checkpoint per trial (the rest pruned), and the study as optuna_study.db."""
    keys = _keys(endpoint, prefix)
    assert "poptune_search.json" in keys and "best_config.json" in keys
    assert not [k for k in keys if "endpoint_override" in k or "http" in k], keys
    trial_dirs = {k.split("/")[0] for k in keys if k.split("/")[0].startswith("MLP")}
    assert len(trial_dirs) == trials
    for trial in trial_dirs:
        checkpoints = {k.split("/")[1] for k in keys if k.startswith(f"{trial}/checkpoint_")}
        assert len(checkpoints) == 1, (trial, checkpoints)
    assert "optuna_study.db" in keys
    if analyzed:
        assert {"analysis/metrics.json", "analysis/report.html", "analysis/report.md"} <= set(keys)
        assert "analysis/model/model.safetensors" in keys


def test_search_export_analyze_with_the_endpoint_in_the_uri(s3, poptune_s3, ray_cluster, tmp_path):
    storage = f"s3://{BUCKET}/uri?endpoint_override={s3}&scheme=http"
    where = f"s3://{BUCKET}/uri/exp?endpoint_override={s3}&scheme=http"
    proc = poptune_s3("search", "--address", ray_cluster.address, "--storage", storage,
                      "--name", "exp", "--num-samples", "3", *SMALL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"into {where}" in proc.stdout
    assert f"best config written to s3://{BUCKET}/uri/exp/best_config.json?" in proc.stdout
    assert "tensorboard" not in proc.stdout  # no local folder to point it at
    _check_experiment(s3, "uri/exp", 3, analyzed=False)

    study = tmp_path / "study.db"
    study.write_bytes(_read(s3, "uri/exp/optuna_study.db"))
    import optuna

    trials = optuna.load_study(study_name="exp", storage=f"sqlite:///{study}").get_trials()
    assert len(trials) == 3 and all(t.state.is_finished() for t in trials)

    # Tune restores from the URI too (its state, the searcher and the trials' folders).
    proc = poptune_s3("search", "--address", ray_cluster.address, "--storage", storage,
                      "--name", "exp", "--resume")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 finished, 0 errored, 0 unfinished" in proc.stdout

    proc = poptune_s3("export", where)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(_read(s3, "uri/exp/best_config.json"))

    proc = poptune_s3("analyze", where, *ANALYSIS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local = tmp_path / "cache" / "experiments" / "s3" / BUCKET / "uri" / "exp"
    assert f"to {local} (checkpoints left out)" in proc.stdout
    assert "uploaded analysis/ and best_config.json to" in proc.stdout
    _check_experiment(s3, "uri/exp", 3, analyzed=True)
    assert not list(local.rglob("checkpoint_*"))
    metrics = json.loads(_read(s3, "uri/exp/analysis/metrics.json"))
    assert metrics == json.loads((local / "analysis" / "metrics.json").read_text())
    assert metrics["search"]["trials"] == 3 and metrics["test"]["n_seeds"] == 2
    best = json.loads(_read(s3, "uri/exp/best_config.json"))
    assert best["reproduce"]["keep_best_epoch"] is True  # rewritten by the analysis
    assert {k: v for k, v in best.items() if k != "reproduce"} == metrics["best_config"]


def test_run_resume_and_refusals_with_the_endpoint_in_the_environment(s3, poptune_s3, ray_cluster):
    env = {"AWS_ENDPOINT_URL": f"http://{s3}"}
    common = ("--address", ray_cluster.address, "--storage", f"s3://{BUCKET}/env", "--name", "e")
    proc = poptune_s3("run", *common, "--num-samples", "2", *SMALL, *ANALYSIS, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "poptune final model" in proc.stdout
    _check_experiment(s3, "env/e", 2, analyzed=True)

    proc = poptune_s3("search", *common, env=env)
    assert proc.returncode == 2
    assert f"experiment s3://{BUCKET}/env/e already exists; pass --resume" in proc.stderr

    proc = poptune_s3("search", *common, "--resume", "--num-samples", "5", env=env)
    assert proc.returncode == 2
    assert "--num-samples 5: the experiment e was started with 2" in proc.stderr

    proc = poptune_s3("search", *common, "--resume", env=env)  # the saved settings, from S3
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming 2 trials × up to 2 epochs" in proc.stdout
    assert "search done in" in proc.stdout and "2 finished, 0 errored, 0 unfinished" in proc.stdout

    missing = ("--address", ray_cluster.address, "--storage", f"s3://{BUCKET}/env")
    proc = poptune_s3("search", *missing, "--name", "nothing", "--resume", env=env)
    assert proc.returncode == 2
    assert f"there is no experiment at s3://{BUCKET}/env/nothing; check --storage" in proc.stderr


def _bucket(endpoint: str) -> dict[str, bytes]:
    """Every object in the bucket: key → content."""
    selector = pyarrow_fs.FileSelector(BUCKET, recursive=True)
    infos = _filesystem(endpoint).get_file_info(selector)
    return {i.path: _read(endpoint, i.path.removeprefix(f"{BUCKET}/")) for i in infos if i.is_file}


def test_estimate_leaves_the_bucket_as_it_was(s3, poptune_s3, ray_cluster):
    """Its calibration search neither replaces what holds its name nor leaves files behind."""
    with _filesystem(s3).open_output_stream(f"{BUCKET}/runs/mine-calibration/keep.txt") as out:
        out.write(b"the user's own")
    before = _bucket(s3)
    proc = poptune_s3("estimate", "--address", ray_cluster.address,
                      "--storage", f"s3://{BUCKET}/runs", "--name", "mine",
                      "--synthetic-rows", "2000", "--num-samples", "2", "--max-epochs", "1",
                      env={"AWS_ENDPOINT_URL": f"http://{s3}"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "poptune: estimate: about" in proc.stdout
    assert _bucket(s3) == before
