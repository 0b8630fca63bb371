"""Moved to :mod:`localray` (the process helpers are in :mod:`localray.processes`). Left only for
tests/test_resume.py's import; remove once that imports `localray.processes` itself."""

from localray.processes import kill_pids

__all__ = ["kill_pids"]
