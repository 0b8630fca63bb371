"""The search space, define-by-run for Optuna: family first, then only that family's keys.

Only `suggest_*` calls live here (Ray's `OptunaSearch` rule: no computation in the space), so
TPE sees a conditional space and never wastes a sample on a width the family does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from poptune.trainables.config import (
    DROPOUT_FAMILIES,
    FAMILIES,
    FAMILY_WIDTHS,
    FEATURE_MAPS,
    SCHEDULES,
)

# Inclusive bounds, sampled on a log scale except dropout. They bracket the reference model
# (128-64-32, dropout 0.2, lr 1e-3, batch 64) with room on both sides.
WIDTH_RANGES: dict[str, tuple[int, int]] = {
    "width_1": (16, 512),
    "width_2": (8, 256),
    "width_3": (4, 128),
}
DROPOUT_RANGE = (0.0, 0.5)
LR_RANGE = (1e-4, 3e-2)
BATCH_SIZES = (64, 128, 256, 512, 1024, 2048)
# 1e-8 is "no weight decay" for all practical purposes, and keeps the log scale defined.
WEIGHT_DECAY_RANGE = (1e-8, 1e-2)


# One sound config for each family other than the reference's, tried early in every search of
# 8 trials or more (poptune.driver.runner.starting_points): mid-sized, batch 256, the inputs
# quantile-mapped and a cosine schedule, which trained well across families on the built-in data.
FAMILY_STARTS: tuple[dict, ...] = (
    {"family": "MLP2Layer", "width_1": 256, "width_2": 128, "lr": 3e-3, "batch_size": 256,
     "weight_decay": 1e-4, "features": "quantile", "schedule": "cosine"},
    {"family": "MLP1Layer", "width_1": 256, "lr": 3e-3, "batch_size": 256,
     "weight_decay": 1e-4, "features": "quantile", "schedule": "cosine"},
    {"family": "MLP2LayerBatchNorm", "width_1": 128, "width_2": 64, "lr": 3e-3,
     "batch_size": 256, "weight_decay": 1e-4, "features": "quantile", "schedule": "cosine"},
)  # fmt: skip


class SuggestTrial(Protocol):
    """The part of `optuna.trial.Trial` the space uses (poptune's searcher passes Optuna's own
    trial and reads the params it took)."""

    def suggest_categorical(self, name: str, choices: tuple) -> object: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


def define_space(trial: SuggestTrial, *, recipe: bool = True) -> None:
    """Sample one config into ``trial``: its params are the config.

    ``recipe=False`` leaves the training recipe (input map, schedule) at its defaults: the space
    of the model alone, which benchmarks compare the search against."""
    family = trial.suggest_categorical("family", FAMILIES)
    for key in FAMILY_WIDTHS[family]:
        trial.suggest_int(key, *WIDTH_RANGES[key], log=True)
    if family in DROPOUT_FAMILIES:
        trial.suggest_float("dropout", *DROPOUT_RANGE)
    trial.suggest_float("lr", *LR_RANGE, log=True)
    trial.suggest_categorical("batch_size", BATCH_SIZES)
    trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
    if not recipe:
        return
    # The training recipe is searched too: each choice helped some models and not others.
    trial.suggest_categorical("features", FEATURE_MAPS)
    trial.suggest_categorical("schedule", SCHEDULES)


@dataclass(frozen=True)
class Domain:
    """One key of the space as `define_space` asks for it: its choices, or its bounds."""

    kind: str  # "categorical", "int" or "float"
    choices: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False


def space_domains(*, recipe: bool = True) -> dict[str, Domain]:
    """Every key `define_space` can suggest, over all its branches, with its domain.

    Read from the space itself (each categorical choice is taken in turn), so whatever lists the
    keys, such as TensorBoard's HParams record, cannot drift from what the search samples.
    """
    domains: dict[str, Domain] = {}
    pending: list[tuple[int, ...]] = [()]  # the categorical choices of one branch, in order
    while pending:
        define_space(_BranchWalker(pending.pop(), domains, pending), recipe=recipe)
    return domains


class _BranchWalker:
    """A stand-in trial that follows one branch of the space and queues the branches beside it."""

    def __init__(
        self, path: tuple[int, ...], domains: dict[str, Domain], pending: list[tuple[int, ...]]
    ) -> None:
        self._path, self._domains, self._pending = path, domains, pending
        self._taken: list[int] = []

    def suggest_categorical(self, name: str, choices: tuple) -> object:
        self._domains.setdefault(name, Domain("categorical", choices=tuple(choices)))
        depth = len(self._taken)
        if depth < len(self._path):
            index = self._path[depth]
        else:  # a choice this branch meets first: take the first, queue the others
            index = 0
            self._pending.extend((*self._taken, i) for i in range(1, len(choices)))
        self._taken.append(index)
        return choices[index]

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        self._domains.setdefault(name, Domain("int", low=low, high=high, log=log))
        return low

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self._domains.setdefault(name, Domain("float", low=low, high=high, log=log))
        return low
