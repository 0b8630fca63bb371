"""The experiment folder of a search, as the runner keeps it: refuse to overwrite one (or to resume
one that is not there), replace it on --force, record the search's settings and wall time in
poptune_search.json, write best_config.json of the best trial and keep only each trial's newest
checkpoint once the search is over. Local folders and bucket URIs alike (``poptune.storage.remote``
for the latter)."""

from __future__ import annotations

import shutil
from pathlib import Path

from poptune import uri
from poptune.analysis.export import best_config_document
from poptune.analysis.results import SearchResults, read_results
from poptune.data import Prepared
from poptune.driver.settings import SearchSettings
from poptune.errors import ExperimentError
from poptune.files import package_versions, read_json, write_json_atomic
from poptune.layout import BEST_CONFIG_FILE, SEARCH_FILE
from poptune.location import location_of, read_search_meta, write_json_in
from poptune.storage import remote


def check_experiment_dir(settings: SearchSettings) -> Path | None:
    """Refuse an experiment that would be overwritten or that --resume cannot find; return the
    local experiment dir (None for remote storage)."""
    if settings.storage_is_local:
        exp_dir: Path | None = uri.local_path(settings.experiment_uri)
        where = str(exp_dir)
        exists = exp_dir.exists() and any(exp_dir.iterdir())
    else:
        exp_dir, where = None, uri.shown(settings.experiment_uri)
        exists = remote.holds_files(settings.experiment_uri)
    if settings.resume and not exists:
        raise ExperimentError(
            f"--resume: there is no experiment at {where}; check --storage and --name"
        )
    if exists and not settings.resume and not settings.force:
        raise ExperimentError(
            f"experiment {where} already exists; pass --resume to continue it, "
            "--force to replace it, or choose another --name"
        )
    return exp_dir


def replace_experiment_dir(exp_dir: Path, settings: SearchSettings) -> None:
    if settings.force and exp_dir.exists():
        shutil.rmtree(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)


def prune_checkpoints(exp_dir: Path) -> int:
    """Keep only the newest checkpoint of each trial of a finished search; return how many
    were removed. Only called when no trial is left to resume."""
    removed = 0
    for trial_dir in (p for p in exp_dir.iterdir() if p.is_dir()):
        checkpoints = sorted(trial_dir.glob("checkpoint_*"))
        for old in checkpoints[:-1]:
            shutil.rmtree(old)
            removed += 1
    return removed


def write_search_file(
    settings: SearchSettings, prepared: Prepared, *, wall_s: float | None
) -> None:
    doc = {
        "settings": settings.to_dict(),
        "data": prepared.info.to_dict(),
        "wall_s": wall_s,
        "versions": package_versions(),
    }
    if settings.storage_is_local:
        write_json_atomic(uri.local_path(settings.experiment_uri) / SEARCH_FILE, doc)
    else:  # s3://, gs://: --resume and `poptune analyze` of the URI need it there too
        remote.write_json_uri(uri.join(settings.experiment_uri, SEARCH_FILE), doc)


def previous_wall_s(settings: SearchSettings) -> float:
    try:
        if settings.storage_is_local:
            meta = read_json(uri.local_path(settings.experiment_uri) / SEARCH_FILE)
        else:
            meta = remote.read_json_uri(uri.join(settings.experiment_uri, SEARCH_FILE))
        return float(meta.get("wall_s") or 0.0)
    except (OSError, ValueError):
        return 0.0


def write_best_config(settings: SearchSettings) -> tuple[str, SearchResults]:
    """best_config.json of the search's best trial, once the search is over (the analysis
    rewrites it for its winner); return where it went, as messages show it, and the results."""
    where = location_of(settings.experiment_uri)
    results = read_results(where)
    document = best_config_document(results.best(), read_search_meta(where))
    return write_json_in(where, BEST_CONFIG_FILE, document), results
