"""Other libraries' private names, each library's reached from its own compat module here.

poptune's search is fast because a few of Optuna's internals are used directly (see
``optuna_compat``); a private local Ray is safe, and a cluster address probed, through a few of
Ray's (``ray_compat`` for Ray core and the version check, ``ray_tune_compat`` for the state of Ray
Tune's classes that poptune extends); training skips work that torch's public calls always do, where
torch's private state says it may (``torch_compat``). A module here is the only place that reaches
such a name; it checks the installed version against the versions its code was written for, and
outside them (or with ``POPTUNE_PUBLIC_PATHS=1`` in the environment) poptune takes the library's
public path instead, or does without, with one warning naming the version and what is lost: the same
search, slower or with one of Ray's defaults. Where no public path exists (the state of Ray's
classes that poptune subclasses), the name is read on any version, and an error says how to install
the tested one should it be gone.
"""

from __future__ import annotations

import os
import sys

PUBLIC_PATHS_ENV = "POPTUNE_PUBLIC_PATHS"
_warned: set[str] = set()


def public_paths_forced() -> bool:
    """True when the environment asks for the public paths only (to compare, or to get past a
    bug in a private one)."""
    return os.environ.get(PUBLIC_PATHS_ENV, "") not in ("", "0")


def warn_once(library: str, line: str) -> None:
    """One ``poptune: warning:`` line per ``library`` and process (a library's name, or a
    library and one of its fallbacks where each loses something else)."""
    if library not in _warned:
        _warned.add(library)
        print(f"poptune: warning: {line}", file=sys.stderr, flush=True)


def major_minor(version: str) -> tuple[int, int]:
    """``(2, 13)`` of ``"2.13.0+cpu"``: the release a library's private code may change in."""
    major, minor = version.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def off_reason(library: str, version: str, written_for: tuple[tuple[int, int], ...]) -> str | None:
    """Why ``library``'s private names are not to be used here (the public paths are forced, or
    ``version`` is not one of ``written_for``), or None where they are."""
    if public_paths_forced():
        return f"{PUBLIC_PATHS_ENV} is set"
    if major_minor(version) not in written_for:
        written = ", ".join(f"{a}.{b}" for a, b in written_for)
        return f"{library} {version} is not a version poptune was written for ({written})"
    return None
