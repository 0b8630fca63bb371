"""A search joined to an autoscaling cluster that has no CPUs up yet: cluster.yaml's shape, a head
with no CPUs for trials and CPU workers from `min_workers: 0`, on Ray's fake multi-node provider
(its worker nodes are Ray processes on this machine, started by the head's real autoscaler).

The driver runs as on a `ray up` head: its home holds ray_bootstrap_config.yaml, the
autoscaling config, from which it learns what the autoscaler can add. Without it (a head started
by hand with `ray start --head --autoscaling-config=FILE`, as self-run autoscalers do) the same
cluster has 0 CPUs and no node types poptune can read: the search is refused unless
--max-concurrent says how many trials to start, and then they wait for the nodes to come.

Each test gets a cluster of its own, since each needs one with no worker up yet (the autoscaler
keeps idle workers for minutes).
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from localray.cluster import FakeAutoscalingCluster, start_autoscaling_head
from poptune.analysis.results import read_results
from tests.quirks import doc_rows

pytestmark = pytest.mark.ray

WORKER_CPUS = 2
MAX_WORKERS = 2
SAMPLES = 4
SEARCH = ("--synthetic-rows", "2000", "--num-samples", str(SAMPLES), "--max-epochs", "2")


@pytest.fixture
def cluster(ray_token):
    worker = {"resources": {"CPU": WORKER_CPUS}, "min_workers": 0, "max_workers": MAX_WORKERS}
    cluster = start_autoscaling_head(
        {"cpu_worker": worker}, max_workers=MAX_WORKERS, token_path=ray_token
    )
    try:
        yield cluster
    finally:
        cluster.stop()
        assert not cluster.pids(), "a process of the cluster outlived its stop"
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def driver_env(cluster: FakeAutoscalingCluster, home: Path) -> dict[str, str]:
    home.mkdir()
    return {
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": cluster.env["RAY_AUTH_TOKEN_PATH"],
        "RAY_ADDRESS": "",
    }


def search_args(cluster: FakeAutoscalingCluster, tmp_path: Path, name: str) -> tuple:
    """No --max-concurrent: the search works out its own limit."""
    return ("search", "--address", cluster.address, *SEARCH,
            "--storage", tmp_path / "runs", "--name", name)  # fmt: skip


NO_CPUS_TITLE = "`--address` of a cluster with no CPUs up and no node types to read"


def test_without_the_autoscalers_config_max_concurrent_lets_the_trials_wait(cluster, cli, tmp_path):
    """A driver that cannot see the node types sees a cluster of 0 CPUs: refused, naming
    --max-concurrent; with it, the search starts and its trials run on the nodes they bring."""
    assert not cluster.autoscaled_node_ids(), "a worker node is up before any search"
    env = driver_env(cluster, tmp_path / "home")
    result = cli(*search_args(cluster, tmp_path, "refused"), env=env, timeout=120)
    assert result.code == 2, result.err[-3000:]
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("poptune: error: "), result.err[-3000:]
    code, message = doc_rows("Clusters")[NO_CPUS_TITLE]
    assert code == 2 and message in lines[0]
    assert "pass --max-concurrent K to start anyway" in message
    assert not (tmp_path / "runs" / "refused").exists()

    samples = 2
    args = ("search", "--address", cluster.address, "--synthetic-rows", "2000",
            "--num-samples", str(samples), "--max-epochs", "1", "--max-concurrent", "2",
            "--storage", tmp_path / "runs", "--name", "waited")  # fmt: skip
    result = cli(*args, env=env, timeout=180)
    assert result.code == 0, result.err[-3000:]
    assert (
        "poptune: the cluster has no CPUs up yet; the trials wait for the nodes its autoscaler "
        "adds (up to 2 at once, --max-concurrent)"
    ) in result.err
    results = read_results(tmp_path / "runs" / "waited")
    assert len(results.trials) == samples and results.terminated == samples
    started = cluster.autoscaled_node_ids()
    assert started and {t.node_id for t in results.trials} <= started


def test_a_search_grows_the_cluster_from_no_workers(cluster, cli, tmp_path):
    env = driver_env(cluster, tmp_path / "home")
    (tmp_path / "home" / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(cluster.config))
    result = cli(*search_args(cluster, tmp_path, "auto"), env=env, timeout=180)
    assert result.code == 0, result.err[-3000:]
    assert (
        "no node with 1 CPU(s) for a trial is up yet; the autoscaler starts cpu_worker nodes"
    ) in result.err

    experiment = tmp_path / "runs" / "auto"
    results = read_results(experiment)
    assert len(results.trials) == SAMPLES and results.terminated == SAMPLES
    # Every trial ran on a worker node the autoscaler started (the head has no CPUs for one).
    started = cluster.autoscaled_node_ids()
    assert 1 <= len(started) <= MAX_WORKERS
    assert {t.node_id for t in results.trials} <= started

    # The concurrency limit is the autoscaler's maximum: 2 workers of 2 CPUs, one CPU a trial.
    # Tune keeps the search's TuneConfig in tuner.pkl (for --resume). With it, Tune asked for all 4
    # trials at once: the demand that made the autoscaler add nodes.
    tuner = pickle.loads((experiment / "tuner.pkl").read_bytes())
    assert tuner["_tune_config"].max_concurrent_trials == MAX_WORKERS * WORKER_CPUS
