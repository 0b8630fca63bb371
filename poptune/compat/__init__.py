"""Other libraries' private names, each library's reached from one module here.

poptune's search is fast because a few of Optuna's internals are used directly (see
``optuna_private``); a private local Ray is safe, and a cluster address probed, through a few of
Ray's (``ray_private``); training skips work that torch's public calls always do, where torch's
private state says it may (``torch_private``). A module here is the only place that reaches such
a name; it checks the installed version against the versions its code was written for, and
outside them (or with ``POPTUNE_PUBLIC_PATHS=1`` in the environment) poptune takes the library's
public path instead, or does without, with one warning naming the version and what is lost: the
same search, slower or with one of Ray's defaults. Where no public path exists (the state of
Ray's classes that poptune subclasses), the name is read on any version, and an error says how
to install the tested one should it be gone.
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
