"""Resources a cluster does not have yet, but its autoscaler can add.

A cluster started by the launcher (`ray up cluster.yaml`) keeps its node types in
`~/ray_bootstrap_config.yaml` on the head, where the driver runs (`ray job submit`, `ray attach`);
Ray Tune itself uses that file to tell such a cluster apart. A GPU node type with
`min_workers: 0` has no GPU up until trials ask for one, and that must not read as "no GPUs".
"""

from __future__ import annotations

from pathlib import Path

import yaml

BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


def autoscaled_node_type(
    resource: str, amount: float, config_path: Path = BOOTSTRAP_CONFIG
) -> str | None:
    """A worker node type the autoscaler may start with ``amount`` of ``resource``, or None."""
    path = config_path.expanduser()
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None  # not a launcher-made cluster (or a file we cannot read): nothing promised
    if not isinstance(config, dict):
        return None
    head = config.get("head_node_type")
    for name, node_type in (config.get("available_node_types") or {}).items():
        if name == head or not isinstance(node_type, dict):
            continue
        offered = (node_type.get("resources") or {}).get(resource, 0)
        max_workers = node_type.get("max_workers", config.get("max_workers", 0))
        if max_workers and float(offered) >= amount:
            return str(name)
    return None
