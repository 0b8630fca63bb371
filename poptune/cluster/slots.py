"""How many trials one node holds: the unit both the cluster's capacity and its autoscaler's
node types are counted in."""

from __future__ import annotations

import math


def node_slots(resources: dict[str, float], cpus_per_trial: float, gpus_per_trial: float) -> int:
    """Trials one node holds: its CPUs and GPUs divided by each trial's, rounded down."""
    slots = math.floor(float(resources.get("CPU", 0)) / cpus_per_trial + 1e-9)
    if gpus_per_trial > 0:
        slots = min(slots, math.floor(float(resources.get("GPU", 0)) / gpus_per_trial + 1e-9))
    return max(0, slots)
