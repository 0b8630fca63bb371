"""Optuna's RDB schema as rows: what :class:`~poptune.studies.study_file.StudyFile` inserts for
a trial, table by table, in the form Optuna's RDB storage writes and reads back (its own models'
conversions of values, its distributions as JSON, naive UTC times)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial
from sqlalchemy import Table

from poptune.compat.optuna_compat import rdb_models as models

if models is not None:  # else only the public path of StudyFile.write is taken
    TRIALS = models.TrialModel.__table__
    # Every table that holds rows of a trial (a trial's own row is deleted after them).
    TRIAL_TABLES = (
        models.TrialParamModel,
        models.TrialValueModel,
        models.TrialIntermediateValueModel,
        models.TrialUserAttributeModel,
        models.TrialSystemAttributeModel,
        models.TrialHeartbeatModel,
    )
else:
    TRIALS, TRIAL_TABLES = None, ()


def trial_row(trial: FrozenTrial, study_id: int) -> dict[str, Any]:
    """The trial's own row (its id is the file's to give)."""
    return {
        "number": trial.number,
        "study_id": study_id,
        "state": trial.state,
        "datetime_start": utc(trial.datetime_start),
        "datetime_complete": utc(trial.datetime_complete),
    }


def add_rows(
    rows: dict[Table, list[dict[str, Any]]],
    trial_id: int,
    trial: FrozenTrial,
    params: Iterable[str],
    steps: Iterable[int],
) -> None:
    """Add the rows of ``trial``'s ``params`` and ``steps`` (epochs), and of its values once
    it is finished, to ``rows``, per table of Optuna's."""
    for name in params:
        distribution = trial.distributions[name]
        rows[models.TrialParamModel.__table__].append(
            {
                "trial_id": trial_id,
                "param_name": name,
                "param_value": distribution.to_internal_repr(trial.params[name]),
                "distribution_json": distribution_to_json(distribution),
            }
        )
    intermediate = models.TrialIntermediateValueModel
    for step in steps:
        value, kind = intermediate.intermediate_value_to_stored_repr(
            trial.intermediate_values[step]
        )
        rows[intermediate.__table__].append(
            {
                "trial_id": trial_id,
                "step": step,
                "intermediate_value": value,
                "intermediate_value_type": kind,
            }
        )
    if trial.state.is_finished() and trial.values is not None:
        for objective, v in enumerate(trial.values):
            value, kind = models.TrialValueModel.value_to_stored_repr(v)
            rows[models.TrialValueModel.__table__].append(
                {"trial_id": trial_id, "objective": objective, "value": value, "value_type": kind}
            )


def utc(moment: datetime | None) -> datetime | None:
    """As Optuna's RDB storage keeps a trial's times: naive UTC (a FrozenTrial's are naive
    local time)."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)
