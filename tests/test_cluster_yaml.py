"""cluster.yaml passes Ray's own launcher validation, keeps the promises docs/cluster.md makes,
and its node types are what a search on the head reads to size itself.

`prepare_config` merges the AWS defaults as `ray up` does; `validate_config` checks the result
against Ray's schema and its cross-field rules (Ray's own tests cover that the validation bites).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from poptune.cluster.autoscale import bootstrap_autoscaling

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture
def config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


def validate(config: dict[str, Any]) -> dict[str, Any]:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    # Ray checks the sum of min_workers against the global cap, not each type's own bounds.
    for name, node_type in prepared["available_node_types"].items():
        if node_type["min_workers"] > node_type["max_workers"]:
            raise ValueError(f"{name}: min_workers > max_workers")
    return prepared


def test_ray_launcher_accepts_it(config):
    prepared = validate(config)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_node_types_and_autoscaling_bounds(config):
    types = validate(config)["available_node_types"]
    assert set(types) == {"head", "cpu", "gpu"}
    assert types["head"]["resources"] == {"CPU": 0}  # no trials next to the driver
    assert 1 <= types["cpu"]["min_workers"] < types["cpu"]["max_workers"]
    assert types["gpu"]["min_workers"] == 0 and types["gpu"]["resources"]["GPU"] >= 1
    assert sum(t["max_workers"] for n, t in types.items() if n != "head") <= config["max_workers"]


def test_gpu_workers_count_as_available_to_a_gpu_search(config, tmp_path):
    """What the driver on the head reads from ~/ray_bootstrap_config.yaml (a copy of this)."""
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    bootstrap.write_text(yaml.safe_dump(validate(config)))
    autoscaling = bootstrap_autoscaling(bootstrap)
    assert autoscaling.node_type_with("GPU", 0.5) == "gpu"
    assert autoscaling.node_type_with("GPU", 2) is None
    assert bootstrap_autoscaling(tmp_path / "missing.yaml") is None


def test_a_search_on_the_head_takes_its_concurrency_from_the_node_types(config, tmp_path):
    """`ray up` writes the config to ~/ray_bootstrap_config.yaml on the head, with each node
    type's resources filled in from its instance type (the cpu type's c5.4xlarge: 16 CPUs); a
    search there may run as many trials at once as every node the cluster may have holds."""
    prepared = validate(config)
    types = prepared["available_node_types"]
    assert types["cpu"]["resources"] == {}  # left to the launcher to detect
    types["cpu"]["resources"] = {"CPU": 16}
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    bootstrap.write_text(yaml.safe_dump(prepared))
    autoscaling = bootstrap_autoscaling(bootstrap)
    cpu, gpu = types["cpu"], types["gpu"]
    # 1 CPU a trial: the 8 cpu workers (16 each) and the 2 gpu workers (4 each): 10 <= the cap.
    assert cpu["max_workers"] + gpu["max_workers"] <= prepared["max_workers"]
    assert autoscaling.max_slots(1, 0) == 8 * 16 + 2 * 4
    # A quarter GPU a trial: only the gpu workers, 4 trials each (their 4 CPUs allow 4).
    assert autoscaling.max_slots(1, 0.25) == 2 * 4
    assert autoscaling.max_slots(2, 0) == 8 * 8 + 2 * 2


def test_security_promises(config):
    prepared = validate(config)
    assert prepared["provider"]["cache_stopped_nodes"] is False
    # Every node type brings its own security group: the launcher's default opens SSH to all.
    for name, node_type in prepared["available_node_types"].items():
        assert node_type["node_config"].get("SecurityGroupIds"), name
    # Token auth on every node: the same token file everywhere, token mode for Ray and drivers.
    assert prepared["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
    starts = prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token ray start" in c for c in starts if "ray start" in c)
    # Trial workers inherit one malloc arena from their node (no growth trial after trial).
    assert all("MALLOC_ARENA_MAX=1" in c for c in starts if "ray start" in c)
    assert any("export RAY_AUTH_MODE=token" in c for c in prepared["setup_commands"])
    head_start = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    # Workers write checkpoints to S3, so they need an instance profile that may.
    for name in ("cpu", "gpu"):
        assert prepared["available_node_types"][name]["node_config"]["IamInstanceProfile"]


def test_setup_installs_poptune_with_the_tested_pins(config):
    prepared = validate(config)
    assert prepared["file_mounts"]["/home/ubuntu/poptune"] == "."
    install = [c for c in prepared["setup_commands"] if "pip install" in c]
    assert install and "-c ~/poptune/constraints.txt" in install[0]
    assert "-e ~/poptune" in install[0]
    assert ".venv" in prepared["rsync_exclude"]
