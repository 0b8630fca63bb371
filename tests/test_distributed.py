"""A real two-node cluster on this machine: trials spread over both nodes.

Head and worker have 1 CPU each, so two trials run at once, one per node. The head is told to
declare a silent node dead after ~3 s instead of Ray's ~15 s, only to keep the test short.
Losing worker nodes, again and again, is tests/test_chaos_nodes.py's.

No search says --max-concurrent: poptune takes the limit from the nodes it joined (two slots),
so Tune asks for both trials' workers at once. With no limit at all Tune would start one trial at
a time, and with reused workers a trial that ends before the next node's worker is up (5.5 s for
a fresh worker here, against 9 s for the longest trial) hands that worker's trial its own: then
every trial could run on the head.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localray.cluster import FAST_NODE_DEATH, LocalCluster, WorkerNode, start_head
from localray.processes import kill_pids
from poptune.analysis.results import read_results

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def head(ray_token: Path) -> Iterator[LocalCluster]:
    cluster = start_head(num_cpus=1, token_path=ray_token, env=FAST_NODE_DEATH)
    try:
        yield cluster
    finally:
        cluster.stop()  # the head, and every worker node started against it (same temp dir)


@pytest.fixture
def worker(head: LocalCluster) -> Iterator[WorkerNode]:
    node = head.add_worker(num_cpus=1)
    try:
        yield node
    finally:
        pid = node.raylet_pid()
        kill_pids([pid] if pid else [])  # a node's own processes exit with its raylet


def driver_env(ray_token: Path) -> dict[str, str]:
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token), "RAY_ADDRESS": ""}


def test_trials_spread_over_both_nodes(cli, head, worker, ray_token, tmp_path):
    # Trials long enough that the first is still running when the other node's worker is up
    # (both are asked for at once); a trial that ends first hands its worker the next trial.
    r = cli(
        "search", "--address", head.address, "--synthetic-rows", "100000", "--num-samples", "4",
        "--max-epochs", "8", "--scheduler", "fifo",
        "--storage", tmp_path / "runs", "--name", "spread", env=driver_env(ray_token),
        timeout=300,
    )  # fmt: skip
    assert r.code == 0, r.err[-3000:]
    assert "up to 2 trial(s) at once on 2 node(s) (2 CPUs)" in r.out  # both nodes' slots
    # All nodes share this machine's disk, so a local --storage is right and is not warned about.
    assert "warning" not in r.err
    results = read_results(tmp_path / "runs" / "spread")
    assert len(results.trials) == 4 and results.terminated == 4
    nodes = {t.node_id for t in results.trials}
    assert worker.node_id() in nodes
    assert len(nodes) == 2, f"trials ran on {nodes}, expected the head and the worker"
