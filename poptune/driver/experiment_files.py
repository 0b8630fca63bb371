"""The experiment of a search, as the runner keeps it: refuse to overwrite one (or to resume one
that is not there), replace it on --force, record the search's settings and wall time in
poptune_search.json, write best_config.json of the best trial and keep only each trial's newest
checkpoint once the search is over. Local folders and bucket URIs alike, through
:class:`~poptune.storage.location.ExperimentLocation`."""

from __future__ import annotations

from poptune.analysis.export import best_config_document
from poptune.analysis.results import SearchResults
from poptune.data import Prepared
from poptune.driver.settings import SearchSettings
from poptune.errors import ExperimentError
from poptune.files import package_versions
from poptune.layout import BEST_CONFIG_FILE, SEARCH_FILE
from poptune.storage.location import ExperimentLocation


def check_experiment(settings: SearchSettings) -> ExperimentLocation:
    """The experiment's location, once it is clear that it is not overwritten by mistake and
    that --resume finds it."""
    location = settings.location
    exists = location.holds_files()
    if settings.resume and not exists:
        raise ExperimentError(
            f"--resume: there is no experiment at {location.shown()}; check --storage and --name"
        )
    if exists and not settings.resume and not settings.force:
        raise ExperimentError(
            f"experiment {location.shown()} already exists; pass --resume to continue it, "
            "--force to replace it, or choose another --name"
        )
    return location


def replace_experiment(location: ExperimentLocation, settings: SearchSettings) -> None:
    """An empty experiment in place of the old one on --force; the folder made where needed."""
    if settings.force:
        location.delete()
    location.make()


def write_search_file(
    settings: SearchSettings, prepared: Prepared, *, wall_s: float | None
) -> None:
    doc = {
        "settings": settings.to_dict(),
        "data": prepared.info.to_dict(),
        "wall_s": wall_s,
        "versions": package_versions(),
    }
    # In a bucket too: --resume and `poptune analyze` of the URI need it there.
    settings.location.write_json(doc, SEARCH_FILE)


def previous_wall_s(settings: SearchSettings) -> float:
    try:
        meta = settings.location.read_json(SEARCH_FILE)
        return float(meta.get("wall_s") or 0.0)
    except (OSError, ValueError):
        return 0.0


def write_best_config(settings: SearchSettings, results: SearchResults) -> str:
    """best_config.json of the search's best trial in ``results``, once the search is over (the
    analysis rewrites it for its winner); return where it went, as messages show it."""
    location = settings.location
    document = best_config_document(results.best(), location.read_json(SEARCH_FILE))
    return location.write_json(document, BEST_CONFIG_FILE)
