"""Where an experiment is: a local folder or a bucket URI (s3://, gs://), and the few reads and
writes of its JSON files that both kinds take, plus the local folder a remote experiment is
copied into for analysis."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from poptune import uri
from poptune.layout import SEARCH_FILE

CACHE_ENV = "POPTUNE_CACHE_DIR"  # where remote experiments are copied for analysis


def local_copy(location: str) -> Path:
    """The folder a remote experiment is copied into for analysis: one per location, under
    $POPTUNE_CACHE_DIR (default: $XDG_CACHE_HOME/poptune, i.e. ~/.cache/poptune)."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "poptune")
    scheme, _, rest = uri.strip_query(location).partition("://")
    parts = [p for p in rest.split("/") if p not in ("", ".", "..")]
    return Path(root).expanduser().joinpath("experiments", scheme, *parts)


def location_of(experiment_uri: str) -> str:
    """A local experiment as a plain path, a remote one as its URI."""
    return experiment_uri if uri.is_remote(experiment_uri) else str(uri.local_path(experiment_uri))


def read_search_meta(location: str) -> dict[str, Any]:
    """The experiment's poptune_search.json (settings, data, wall, versions)."""
    if uri.is_remote(location):
        from poptune.storage.remote import read_json_uri

        return read_json_uri(uri.join(location, SEARCH_FILE))
    from poptune.analysis.analyze import load_search_meta

    return load_search_meta(Path(location))


def write_json_in(location: str, name: str, document: dict) -> str:
    """Write ``document`` as ``name`` in the experiment; return where, as messages show it."""
    if uri.is_remote(location):
        from poptune.storage.remote import write_json_uri

        write_json_uri(uri.join(location, name), document)
        return uri.shown(uri.join(location, name))
    from poptune.files import write_json_atomic

    return str(write_json_atomic(Path(location) / name, document))


def read_json_in(location: str, *parts: str) -> dict[str, Any] | None:
    """The JSON file at ``parts`` below the experiment, or None where there is none."""
    from poptune.files import read_json

    if uri.is_remote(location):
        from poptune.storage.remote import read_json_uri

        try:
            return read_json_uri(uri.join(location, *parts))
        except FileNotFoundError:
            return None
    path = uri.local_path(location).joinpath(*parts)
    return read_json(path) if path.is_file() else None
