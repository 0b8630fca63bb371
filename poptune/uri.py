"""Experiment locations: a local path, or a storage URI such as ``s3://bucket/runs``.

A URI may carry options in its query string, as MinIO, R2 and other S3-compatible stores need
(``s3://bucket/runs?endpoint_override=host:9000&scheme=http``). pyarrow reads those options
from the query, so a path appended *after* it becomes part of an option's value (the scheme
``http/exp/poptune_search.json``). Every path below an experiment is built here, inserted
before the query string. Pure string work: no pyarrow, no network.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

# Query options whose values are secrets (pyarrow's S3 options): never shown in messages.
_SECRET_OPTIONS = ("secret_key", "session_token", "access_key")


def is_uri(location: str | Path) -> bool:
    """True for ``scheme://…`` locations (``file://`` included), False for plain paths."""
    return isinstance(location, str) and "://" in location


def is_remote(location: str | Path) -> bool:
    """True when the location is not on this machine's file system (s3://, gs://, …)."""
    return is_uri(location) and not str(location).startswith("file://")


def local_path(location: str | Path) -> Path:
    """The path of a local location (a plain path or a ``file://`` URI)."""
    if is_remote(location):
        raise ValueError(f"{location} is not a local path")
    return Path(str(location).removeprefix("file://"))


def join(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended to its path, before any query string.

    >>> join("s3://b/runs?endpoint_override=h:9000&scheme=http", "exp", "a.json")
    's3://b/runs/exp/a.json?endpoint_override=h:9000&scheme=http'
    """
    path, sep, query = base.partition("?") if is_uri(base) else (base, "", "")
    for part in parts:
        path = f"{path.rstrip('/')}/{part.strip('/')}"
    return f"{path}{sep}{query}"


def strip_query(location: str) -> str:
    """The location without its query string: ``s3://b/runs/exp``."""
    return location.partition("?")[0] if is_uri(location) else location


def shown(location: str | Path) -> str:
    """The location as messages show it: secret query options replaced by ``***``."""
    text = str(location)
    if not is_uri(text) or "?" not in text:
        return text
    path, _, query = text.partition("?")
    pairs = [(k, "***" if k in _SECRET_OPTIONS else v) for k, v in parse_qsl(query)]
    return f"{path}?{urlencode(pairs, safe=':/*')}"
