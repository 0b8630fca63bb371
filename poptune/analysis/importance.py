"""Hyperparameter importance per family, from the search's persistent Optuna study.

Optuna's evaluators consider only the parameters *every* trial has, so on the whole
define-by-run study they would drop each family's widths and dropout. Each family therefore gets
its own in-memory copy of the study holding just its trials, where all its keys are present.
Trials ASHA stopped early are included with the value they were stopped at (the study records
them as PRUNED with that value): they are most of a search, and they were stopped for a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from poptune.layout import STUDY_FILE
from poptune.trainables import FAMILIES

MIN_TRIALS = 4  # below this a forest of a handful of points says nothing
_USED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class FamilyImportance:
    family: str
    trials: int
    pruned: int
    importances: dict[str, float] | None  # None when there were too few trials
    note: str = ""


def study_url(exp_dir: Path, search_settings: dict[str, Any]) -> str | None:
    """The study's storage URL: the one given to the search, else the experiment's SQLite."""
    if search_settings.get("study_storage"):
        return search_settings["study_storage"]
    path = exp_dir / STUDY_FILE
    # Never point SQLAlchemy at a missing file: it would create an empty database there.
    return f"sqlite:///{path.resolve()}" if path.is_file() else None


def load_study(url: str, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=url)


def family_importances(study: optuna.Study, *, seed: int = 0) -> list[FamilyImportance]:
    """One entry per family present in the study, in FAMILIES order."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" per family
    used = study.get_trials(deepcopy=False, states=_USED_STATES)
    trials = [t for t in used if t.value is not None]
    out = []
    for family in FAMILIES:
        mine = [t for t in trials if t.params.get("family") == family]
        if not mine:
            continue
        pruned = sum(t.state == TrialState.PRUNED for t in mine)
        if len(mine) < MIN_TRIALS:
            note = f"only {len(mine)} trial(s); needs {MIN_TRIALS}"
            out.append(FamilyImportance(family, len(mine), pruned, None, note))
            continue
        copy = _family_study(mine)
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        scores = optuna.importance.get_param_importances(copy, evaluator=evaluator)
        out.append(
            FamilyImportance(family, len(mine), pruned, {k: float(v) for k, v in scores.items()})
        )
    return out


def read_importances(
    exp_dir: Path, settings: dict[str, Any], log: Callable[[str], None] = print
) -> tuple[list[FamilyImportance], str]:
    """The importances of the search's study, and a note for the report where there are none."""
    url = study_url(exp_dir, settings)
    if url is None:
        return [], "No Optuna study was found next to the experiment, so no importance."
    try:
        study = load_study(url, settings["name"])
        return family_importances(study, seed=settings["seed"]), ""
    except Exception as exc:  # any storage failure: importance is optional, the report is not
        log(f"note: no parameter importance: cannot read the Optuna study ({exc})")
        return [], f"The Optuna study could not be read ({type(exc).__name__}), so no importance."


def _family_study(trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory study of one family's trials, without the (now constant) family key."""
    copy = optuna.create_study(direction="minimize")
    copy.add_trials(
        [
            optuna.trial.create_trial(
                params={k: v for k, v in t.params.items() if k != "family"},
                distributions={k: d for k, d in t.distributions.items() if k != "family"},
                value=t.value,
            )
            for t in trials
        ]
    )
    return copy
