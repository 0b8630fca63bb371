"""Other libraries' private names, each library's reached from one module here.

poptune's search is fast because a few of Optuna's internals are used directly (see
``optuna_private``). A module here is the only place that imports such a name; it checks the
installed version against the versions its code was written for, and outside them (or with
``POPTUNE_PUBLIC_PATHS=1`` in the environment) poptune takes the library's public path instead,
with one warning naming the version: the same search, only slower at thousands of trials.
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
    """One ``poptune: warning:`` line per library and process."""
    if library not in _warned:
        _warned.add(library)
        print(f"poptune: warning: {line}", file=sys.stderr, flush=True)
