"""A real two-node cluster on this machine: trials spread over both nodes, and survive losing one.

Head and worker have 1 CPU each, so two trials run at once, one per node. The head is told to
declare a silent node dead after ~3 s instead of Ray's ~15 s, only to keep the test short.

No search says --max-concurrent: poptune takes the limit from the nodes it joined (two slots),
so Tune asks for both trials' workers at once. With no limit at all Tune would start one trial at
a time, and with reused workers a trial that ends before the next node's worker is up (5.5 s for
a fresh worker here, against 9 s for the longest trial) hands that worker's trial its own: then
every trial could run on the head.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localray.cluster import LocalCluster, WorkerNode, start_head
from localray.processes import kill_pids
from poptune.analysis.results import read_results
from tests.driver import start_driver

pytestmark = pytest.mark.ray

FAST_NODE_DEATH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


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


# A trial caught on the worker must still have this long to run by its own epoch times, so that
# the kill lands before it ends (the test reacts in tenths of a second).
KILL_MARGIN_S = 4.0


def _worker_trial_mid_run(exp_dir: Path, node_id: str, max_epochs: int) -> str | None:
    """The trial folder of a trial on ``node_id`` that has checkpointed and has, at the pace of
    its last epoch, at least KILL_MARGIN_S of epochs to go. Not before its second epoch: the
    first one's time includes the trial's start-up."""
    for result_file in exp_dir.glob("*/result.json"):
        rows = []
        for line in result_file.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        rows = [row for row in rows if row.get("node_id") == node_id]
        if not rows:
            continue
        last = max(rows, key=lambda row: int(row["epoch"]))
        to_go = (max_epochs - int(last["epoch"])) * float(last["time_this_iter_s"])
        if int(last["epoch"]) >= 2 and to_go >= KILL_MARGIN_S:
            return result_file.parent.name
    return None


def test_lost_worker_node_trials_resume_from_their_checkpoints(head, worker, ray_token, tmp_path):
    # Trials long enough that the worker node (started cold, after the head served a whole search
    # in the test before) runs one before the head has worked through them all.
    samples, epochs = 6, 40
    exp_dir = tmp_path / "runs" / "lost"
    driver = start_driver(
        "search", "--address", head.address, "--synthetic-rows", "100000",
        "--num-samples", samples, "--max-epochs", epochs,
        "--scheduler", "fifo", "--storage", tmp_path / "runs", "--name", "lost",
        env=driver_env(ray_token), cwd=tmp_path,
    )  # fmt: skip
    try:
        node_id = worker.node_id()
        assert node_id, "the worker node's raylet is not running"
        found: list[str] = []

        def caught() -> bool:
            name = _worker_trial_mid_run(exp_dir, node_id, epochs)
            if name:
                found.append(name)
            return bool(name)

        driver.wait_for(caught, timeout_s=240, what="a trial checkpointed on the worker node")
        worker.kill()
        code = driver.finish(timeout_s=300)
        elapsed = time.monotonic() - driver.started
    finally:
        driver.stop()
    assert code == 0, driver.output[-4000:]
    assert "being retried from its last checkpoint" in driver.output

    results = read_results(exp_dir)
    assert len(results.trials) == samples
    assert results.terminated == samples and results.errored == 0
    for trial in results.trials:
        assert [h["epoch"] for h in trial.history] == list(range(1, epochs + 1)), trial.trial_id
    killed = next(t for t in results.trials if found[0].endswith(t.trial_id))
    assert killed.resumed, f"{killed.trial_id} restarted from scratch, not from its checkpoint"
    resumed_at = max(h["resumed_from_epoch"] for h in killed.history)
    assert resumed_at >= 1
    # It finished on the head: the only node left.
    assert killed.node_id != node_id
    print(
        f"lost-worker: {sum(t.resumed for t in results.trials)} trial(s) resumed from a "
        f"checkpoint (the killed one at epoch {resumed_at}); "
        f"{elapsed:.0f} s for the search"
    )
