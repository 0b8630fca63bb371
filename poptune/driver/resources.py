"""What each trial of a search asks Ray for: one placement group factory for all of them.

Tune asks the trainable for a trial's resources once per trial, in the driver, from a copy of
the trainable it unpickles for the purpose; given a resource dict (``tune.with_resources(fn,
{"cpu": 1})``) that copy makes a factory of its own for every trial, which the trial keeps: 2 KB
a trial over a long search. Given :func:`trial_resources` instead, every copy answers with the
one factory this process made for those resources (equal to what Tune makes of the dict).

This module is unpickled with the trainable in every trial's worker too: it imports Ray Tune
(and, with its package, poptune's search settings), not the trainable's modules: a surrogate
trial's worker imports no torch because of it.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from ray import tune


def per_trial(cpus: float, gpus: float) -> partial:
    """The resources argument of ``tune.with_resources`` for ``cpus`` and ``gpus`` a trial."""
    return partial(trial_resources, float(cpus), float(gpus))


def trial_resources(cpus: float, gpus: float, config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """One bundle of ``cpus`` and ``gpus``, whatever the trial's ``config``; the same object
    for every call in a process."""
    return _placement(float(cpus), float(gpus))


@cache
def _placement(cpus: float, gpus: float) -> tune.PlacementGroupFactory:
    return tune.PlacementGroupFactory([{"CPU": cpus, "GPU": gpus, "memory": 0.0}])
