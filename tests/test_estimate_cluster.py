"""`poptune estimate` on a cluster of three nodes: its slots are counted per node, as the search
counts them, and the storage it is given is left as it was (the calibration search runs in a
temporary folder of its own, removed afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localray.cluster import LocalCluster, start_head

pytestmark = pytest.mark.ray

NODE_CPUS = 6


@pytest.fixture(scope="module")
def three_nodes(ray_token) -> Iterator[LocalCluster]:
    """A head and two workers of 6 CPUs each (Ray's logical CPUs: more than this machine has)."""
    cluster = start_head(num_cpus=NODE_CPUS, token_path=ray_token)
    try:
        cluster.add_worker(num_cpus=NODE_CPUS)
        cluster.add_worker(num_cpus=NODE_CPUS)
        yield cluster
    finally:
        cluster.stop()


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_slots_are_per_node_and_the_storage_is_untouched(three_nodes, cli, tmp_path):
    runs = tmp_path / "runs"
    keep = runs / "mine-calibration" / "keep.txt"  # where the calibration's name points
    keep.parent.mkdir(parents=True)
    keep.write_text("the user's own")
    before = files_under(runs)
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": three_nodes.env["RAY_AUTH_TOKEN_PATH"],
           "RAY_ADDRESS": ""}  # fmt: skip
    result = cli("estimate", "--address", three_nodes.address, "--cpus-per-trial", "4",
                 "--num-samples", "4", "--max-epochs", "1", "--synthetic-rows", "2000",
                 "--storage", runs, "--name", "mine", env=env, timeout=300)  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    # Each 6-CPU node holds one 4-CPU trial: 3 at a time, not 18 CPUs / 4.
    assert "poptune: estimate: about" in result.out and ", 3 at a time;" in result.out, result.out
    assert files_under(runs) == before
