"""When Ray's private names may be used: the Ray they were written for, and the one warning
per feature where they may not (see :mod:`poptune.compat.ray_private`)."""

from __future__ import annotations

import ray

from poptune.compat import major_minor, off_reason, warn_once

# The Ray releases (major, minor) whose private code the calls here were written against.
WRITTEN_FOR = ((2, 60),)
# The way back to the tested Ray, for the errors where no public path is left.
INSTALL_TESTED = "pip install -c constraints.txt 'ray[tune]'"


def installed_version() -> tuple[int, int]:
    return major_minor(ray.__version__)


def written_for() -> str:
    return ", ".join(f"{a}.{b}" for a, b in WRITTEN_FOR)


def off_reason_here() -> str | None:
    """Why the private calls are not to be made here, or None where they are."""
    return off_reason("Ray", ray.__version__, WRITTEN_FOR)


def private_paths(feature: str, fallback: str) -> bool:
    """True when this Ray is one the private calls were written for and they are not turned
    off; otherwise False, after one warning (per feature) saying what ``fallback`` loses."""
    reason = off_reason_here()
    if reason is None:
        return True
    warn_once(f"ray: {feature}", f"{reason}; {fallback}")
    return False


def missing(feature: str, exc: Exception, fallback: str) -> None:
    """The Ray poptune was written for, without a private name poptune uses (a patched build)."""
    warn_once(
        f"ray: {feature}",
        f"Ray {ray.__version__} lacks a private name poptune uses ({exc}); {fallback}",
    )
