"""What a search (and its analysis) left behind, as one object for notebooks and scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poptune import uri
from poptune.errors import ExperimentError
from poptune.layout import ANALYSIS_DIR, BEST_CONFIG_FILE, METRICS_FILE, SEARCH_FILE
from poptune.storage.location import ExperimentLocation

if TYPE_CHECKING:
    import pandas as pd

    from poptune.analysis.results import SearchResults

# Tune's trial states, as they appear in Experiment.trials["state"].
FINISHED, ERRORED = "TERMINATED", "ERROR"


@dataclass(frozen=True, eq=False)  # eq=False: a DataFrame has no single truth value
class Experiment:
    """A poptune experiment: where it is, what it found, and (after analysis) how good it is.

    ``trials`` has one row per trial: ``trial_id``, ``state`` (Tune's: TERMINATED, ERROR,
    RUNNING, PENDING), ``best_val_mse`` (the trial's lowest validation MSE, the number TPE and
    the analysis use), ``best_epoch``, ``epochs`` (epochs it ran; fewer than the search's
    ``max_epochs`` when ASHA stopped it) and the config keys (``family``, ``width_1``…, ``lr``,
    ``batch_size``, ``weight_decay``, ``features``, ``schedule``; empty where a family has no such
    key), best trial first.
    """

    location: str  # the experiment folder, or its URI (s3://bucket/runs/name)
    best_config: dict[str, Any]  # flat config keys: after analysis, the winner's
    trials: pd.DataFrame = field(repr=False)
    metrics: dict[str, Any] | None = field(default=None, repr=False)  # analysis/metrics.json
    search: dict[str, Any] = field(default_factory=dict, repr=False)  # poptune_search.json

    @property
    def name(self) -> str:
        return uri.strip_query(self.location).rstrip("/").rpartition("/")[2]

    @property
    def errored(self) -> int:
        return int((self.trials["state"] == ERRORED).sum()) if len(self.trials) else 0

    @property
    def unfinished(self) -> int:
        if not len(self.trials):
            return 0
        return int((~self.trials["state"].isin([FINISHED, ERRORED])).sum())

    @property
    def report(self) -> str | None:
        """Where the analysis report (report.html) is, once the experiment was analyzed."""
        if self.metrics is None:
            return None
        return uri.join(self.location, ANALYSIS_DIR, "report.html")


def load(location: str | Path) -> Experiment:
    """Reopen the experiment at ``location`` (a folder ``<storage>/<name>`` or a storage URI)."""
    location = str(location)
    if not uri.is_remote(location):  # Tune reads an experiment from an absolute path only
        location = str(uri.local_path(location).expanduser().resolve())
    search = ExperimentLocation.of(location).read_json_or_none(SEARCH_FILE)
    if search is None:
        raise ExperimentError(
            f"{uri.shown(location)}: has no {SEARCH_FILE}, so it is not an experiment made by "
            "`poptune search`; pass the folder poptune created, <storage>/<name>"
        )
    return open_experiment(location, search=search)


_UNREAD: Any = object()  # "read metrics.json from the experiment"


def open_experiment(
    location: str,
    *,
    search: dict[str, Any],
    results: SearchResults | None = None,
    metrics: dict[str, Any] | None = _UNREAD,
) -> Experiment:
    """The experiment at ``location``, from what the caller already holds (``results``,
    ``metrics``) and the rest read from the experiment."""
    from poptune.analysis.results import read_results

    results = results if results is not None else read_results(location)
    where = ExperimentLocation.of(location)
    best = where.read_json_or_none(BEST_CONFIG_FILE)
    if best is not None:
        best.pop("reproduce", None)
    elif any(t.best_val_mse is not None for t in results.trials):
        best = results.best().config.to_dict()
    return Experiment(
        location=location,
        best_config=best or {},
        trials=trials_frame(results),
        metrics=(
            where.read_json_or_none(ANALYSIS_DIR, METRICS_FILE) if metrics is _UNREAD else metrics
        ),
        search=search,
    )


def trials_frame(results: SearchResults) -> pd.DataFrame:
    """One row per trial, best first (trials without a finite result last)."""
    import pandas as pd

    rows = [
        {
            "trial_id": t.trial_id,
            "state": t.status,
            "best_val_mse": t.best_val_mse,
            "best_epoch": t.best_epoch,
            "epochs": t.epochs,
            **t.config.to_dict(),
        }
        for t in results.trials
    ]
    columns = ["trial_id", "state", "best_val_mse", "best_epoch", "epochs"]
    frame = pd.DataFrame(rows, columns=columns if not rows else None)
    if rows:
        frame = frame.sort_values("best_val_mse", na_position="last", kind="stable")
    return frame.reset_index(drop=True)
