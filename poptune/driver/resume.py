"""What `--resume` needs besides `Tuner.restore`: the experiment's own settings, and its true state.

`poptune search --name N --resume` must continue the search that was started, on the same data:
Tune restores its trials, searcher and run config from the experiment, but poptune rebuilds the
trainable and the data from settings, so those come from the experiment's `poptune_search.json`
too; options that cannot change mid-search are refused rather than silently ignored.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from typing import Any

import pyarrow.fs

from poptune import uri
from poptune.data import DataSource
from poptune.driver.settings import SearchSettings
from poptune.errors import ExperimentError, UsageError
from poptune.layout import SEARCH_FILE
from poptune.storage.location import ExperimentLocation

TUNER_FILE = "tuner.pkl"  # Tune's pickled Tuner: its configs, searcher and callbacks
# What Tune resumes from besides tuner.pkl: the trials, and the searcher's state.
_RESUME_STATE = {
    "experiment_state-*.json": "experiment_state-",
    "searcher-state-*.pkl": "searcher-state-",
}
# How a cut-short or emptied pickle fails to load, and a missing one (pyarrow: FileNotFoundError).
DAMAGED_PICKLE = (pickle.UnpicklingError, EOFError, FileNotFoundError)

# Where the experiment is, how to reach the cluster, how to resume: these may differ from the
# start (and --force cannot be given with --resume at all).
RESUME_OPTIONS = ("address", "storage", "name", "resume", "retry_errored")


def resumed_settings(
    given: SearchSettings, explicit: Collection[str]
) -> tuple[SearchSettings, str]:
    """The settings the experiment was started with, plus the resume options of ``given``.

    ``explicit`` names the options given on the command line (or in --config): those that would
    change the search are refused. Returns the settings and the sha256 the data must have.
    """
    meta = _search_file(given)
    try:
        saved_dict: dict[str, Any] = dict(meta["settings"])
        sha256 = str(meta["data"]["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExperimentError(
            f"--resume: the {SEARCH_FILE} of {uri.shown(given.experiment_uri)} is incomplete "
            f"({exc}); start a new search with another --name (or --force)"
        ) from exc
    known = {f.name for f in fields(SearchSettings)}
    saved = SearchSettings(
        **{k: v for k, v in saved_dict.items() if k in known and k != "data"},
        data=DataSource.from_dict(saved_dict.get("data") or {}),
    )
    _refuse_changes(given, saved, explicit)
    data = saved.data
    if "data" in explicit:  # the searched file moved: accepted if its sha256 is the searched one
        data = given.data
    settings = replace(
        saved, data=data, force=False, **{k: getattr(given, k) for k in RESUME_OPTIONS}
    )
    return settings, sha256


def _search_file(given: SearchSettings) -> dict[str, Any]:
    """The experiment's poptune_search.json, from a local folder or from s3://, gs://."""
    location = given.location
    where = location.shown(SEARCH_FILE)
    try:
        if not location.holds_files():
            raise ExperimentError(
                f"--resume: there is no experiment at {location.shown()}; check --storage and "
                "--name"
            )
        meta = location.read_json(SEARCH_FILE)
    except FileNotFoundError as exc:
        raise ExperimentError(
            f"--resume: {where} is missing, so there is no poptune experiment to resume there; "
            "check --storage and --name"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ExperimentError(f"--resume: cannot read {where} ({exc})") from exc
    if not isinstance(meta, dict):
        raise ExperimentError(f"--resume: {where} is not a poptune search file")
    return meta


def _refuse_changes(
    given: SearchSettings, saved: SearchSettings, explicit: Collection[str]
) -> None:
    for option in sorted(explicit):
        if option in RESUME_OPTIONS or option == "data":
            continue
        if option == "synthetic_rows":
            now, then = given.data.synthetic_rows, saved.data.synthetic_rows
        elif hasattr(saved, option):
            now, then = getattr(given, option), getattr(saved, option)
        else:
            continue  # not a search option (e.g. analysis options of `poptune run`)
        if now != then:
            flag = "--" + option.replace("_", "-")
            raise UsageError(
                f"{flag} {now}: the experiment {given.name} was started with {then}, and a "
                f"resumed search keeps its settings; drop {flag}, or start a new search with "
                "another --name"
            )


@dataclass(frozen=True)
class SavedCounts:
    trials: int
    terminated: int
    errored: int


def saved_trial_counts(experiment: str) -> SavedCounts:
    """Trial counts from Tune's saved experiment state, the one `--resume` will read.

    After Ctrl-C or SIGTERM, the result grid `Tuner.fit` returns shows the trials Tune stopped as
    TERMINATED, while the saved state rightly keeps them RUNNING (to be resumed); only the saved
    state tells an interrupted search from a finished one.
    """
    from ray.tune import ExperimentAnalysis

    # Trials created just before an interrupt have no results yet, and Tune warns about each.
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        statuses = [trial.status for trial in ExperimentAnalysis(experiment).trials]
    finally:
        log.setLevel(level)
    return SavedCounts(
        trials=len(statuses),
        terminated=statuses.count("TERMINATED"),
        errored=statuses.count("ERROR"),
    )


def rebuildable_tuner_state(experiment: str, damage: BaseException) -> str:
    """The line to show when ``tuner.pkl`` of ``experiment`` cannot be read, if the rest of Tune's
    state is there to continue from; otherwise an ExperimentError naming the file and the way out.

    tuner.pkl holds nothing a resume needs that poptune cannot rebuild from poptune_search.json:
    Tune takes the trials from experiment_state-*.json and the searcher (its study, what it
    suggested, the time spent) from searcher-state-*.pkl, over what tuner.pkl held.
    """
    where = uri.shown(uri.join(experiment, TUNER_FILE))
    why = str(damage) or type(damage).__name__
    names = _top_level_names(experiment)
    missing = [
        pattern
        for pattern, prefix in _RESUME_STATE.items()
        if not any(n.startswith(prefix) for n in names)
    ]
    if missing:
        raise ExperimentError(
            f"--resume: {where} is damaged ({why}), and the experiment has no "
            f"{' or '.join(missing)} to continue from; its trials cannot be resumed: start a "
            "new search with another --name (or --force)"
        ) from damage
    return (
        f"{where} is damaged ({why}); rebuilt it from {SEARCH_FILE}, and the search continues "
        "from its saved trials and searcher state"
    )


def has_tune_state(experiment: str) -> bool:
    """True if Tune has saved the experiment's state at least once (what a resume reads)."""
    return any(
        n.startswith(_RESUME_STATE["experiment_state-*.json"]) for n in _top_level_names(experiment)
    )


def _top_level_names(experiment: str) -> list[str]:
    fs, path = ExperimentLocation.of(experiment).filesystem()
    selector = pyarrow.fs.FileSelector(path, allow_not_found=True)
    return [info.base_name for info in fs.get_file_info(selector)]
