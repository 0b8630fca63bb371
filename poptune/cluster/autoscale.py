"""Resources a cluster does not have yet, but its autoscaler can add.

A cluster started by the launcher (`ray up cluster.yaml`) keeps its node types in
`~/ray_bootstrap_config.yaml` on the head, where the driver runs (`ray job submit`, `ray attach`);
Ray Tune itself uses that file to tell such a cluster apart. A node type with `min_workers: 0`
has no node up until trials ask for one, and that must not read as "no CPUs" or "no GPUs". A
cluster whose autoscaler reports its configuration to Ray (KubeRay) is read from Ray instead.

From the node types follows the most trials the cluster can ever run at once, which the search
uses as its concurrency limit: Tune asks for that many trials' workers at once, and their
demand is what makes the autoscaler add nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from poptune.cluster.slots import node_slots

BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")
UNBOUNDED_NODES = 10_000  # a node group without a maximum (KubeRay's -1)


@dataclass(frozen=True)
class NodeType:
    """A worker node type: what one node offers, and how many the autoscaler may start."""

    name: str
    resources: dict[str, float]  # empty: detected when the node starts (unknown here)
    max_workers: int


@dataclass(frozen=True)
class Autoscaling:
    """The worker node types of an autoscaling cluster, its head's resources, and the cap on
    workers of all types together."""

    node_types: tuple[NodeType, ...]
    head: dict[str, float]
    max_workers: int

    def worker_types(self) -> tuple[str, ...]:
        """The names of the worker node types it may start."""
        return tuple(t.name for t in self.node_types if t.max_workers > 0)

    def node_type_with(self, resource: str, amount: float) -> str | None:
        """A worker node type that may be started with ``amount`` of ``resource``, or None."""
        for node_type in self.node_types:
            if node_type.max_workers and node_type.resources.get(resource, 0) >= amount:
                return node_type.name
        return None

    def max_slots(self, cpus_per_trial: float, gpus_per_trial: float) -> int:
        """The most trials that fit at once with every worker node up: the head's, then the
        node types holding the most trials per node first, up to the workers' cap (a type whose
        resources are detected at start counts for nothing: its size is unknown here)."""
        slots = node_slots(self.head, cpus_per_trial, gpus_per_trial)
        room = self.max_workers
        per_node = sorted(
            ((node_slots(t.resources, cpus_per_trial, gpus_per_trial), t.max_workers)
             for t in self.node_types),
            reverse=True,
        )  # fmt: skip
        for each, count in per_node:
            taken = min(count, room)
            slots += each * taken
            room -= taken
        return slots


def bootstrap_autoscaling(config_path: Path = BOOTSTRAP_CONFIG) -> Autoscaling | None:
    """The launcher's node types from ``config_path``; None if there is no such file."""
    try:
        config = yaml.safe_load(config_path.expanduser().read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None  # not a launcher-made cluster (or a file we cannot read): nothing promised
    if not isinstance(config, dict):
        return None
    head_name = config.get("head_node_type")
    node_types, head = [], {}
    for name, node_type in (config.get("available_node_types") or {}).items():
        if not isinstance(node_type, dict):
            continue
        resources = {k: float(v) for k, v in (node_type.get("resources") or {}).items()}
        if name == head_name:
            head = resources
            continue
        max_workers = int(node_type.get("max_workers", config.get("max_workers", 0)) or 0)
        node_types.append(NodeType(str(name), resources, max_workers))
    cap = config.get("max_workers")
    total = sum(t.max_workers for t in node_types)
    return Autoscaling(tuple(node_types), head, min(total, int(cap)) if cap is not None else total)


def ray_autoscaling(cluster_config) -> Autoscaling | None:
    """Node groups as an autoscaler reported them to Ray (``autoscaler_pb2.ClusterConfig``, as
    :func:`poptune.compat.ray_compat.cluster_config` returns it; KubeRay reports one)."""
    if cluster_config is None or not cluster_config.node_group_configs:
        return None
    node_types = tuple(
        NodeType(
            group.name,
            {k: float(v) for k, v in group.resources.items()},
            UNBOUNDED_NODES if group.max_count < 0 else int(group.max_count),
        )
        for group in cluster_config.node_group_configs
    )
    return Autoscaling(node_types, {}, sum(t.max_workers for t in node_types))


def find_autoscaling(config_path: Path = BOOTSTRAP_CONFIG) -> Autoscaling | None:
    """The joined cluster's autoscaling, from Ray (KubeRay) or the launcher's file on the head;
    None when neither says (a fixed cluster, or a driver away from the head)."""
    try:
        from poptune.compat import ray_compat  # imports Ray: only once a cluster is joined

        reported = ray_autoscaling(ray_compat.cluster_config())
    except Exception:  # no GCS connection, a config of another shape: fall back to the file
        reported = None
    return reported or bootstrap_autoscaling(config_path)
