"""The trial logs Tune writes and `poptune analyze` reads (each trial's result.json and
progress.csv), as Tune's own JSON and CSV loggers with one change: a trial restarted from its
checkpoint keeps the rows the driver logged before the restart (see
:class:`poptune.compat.ray_tune_compat.LiveLogsFirst` for why Tune's own may drop some).

Tune adds its default loggers only where it finds none of their kind among the callbacks, so
passing these replaces them rather than writing each row twice."""

from __future__ import annotations

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from poptune.compat.ray_tune_compat import LiveLogsFirst


class TrialJsonLog(LiveLogsFirst, JsonLoggerCallback):
    """Each trial's result.json (one JSON row per report) and params.json."""


class TrialCsvLog(LiveLogsFirst, CSVLoggerCallback):
    """Each trial's progress.csv (one row per report)."""
