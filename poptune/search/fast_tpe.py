"""Optuna's TPE with its one Python loop swapped for SciPy's C routine, for the calls poptune makes.

For integer and discrete keys (the widths, the batch size) TPE scores every candidate against
every kernel through ``log Φ`` (the log of the normal CDF), which Optuna 5 evaluates one number
at a time in Python (``np.frompyfunc``): two thirds of TPE's own CPU at 1,000 trials.
``scipy.special.log_ndtr`` is the routine Optuna's code was copied from, vectorised; it agrees to
within 6e-8 relative (Optuna's own shortcut above 6 standard deviations is the one that is off)
and makes TPE's own work about three times cheaper (39 → 13 ms a suggestion at 500 trials,
in memory, 32 running). It is swapped in only while poptune's sampler
runs, so any other Optuna in the process is left exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from scipy import special

try:  # Optuna's private module: if a later Optuna moves it, TPE simply runs at its own speed
    from optuna.samplers._tpe import _truncnorm
except ImportError:  # pragma: no cover
    _truncnorm = None


def log_ndtr(a: np.ndarray) -> np.ndarray:
    return special.log_ndtr(np.asarray(a, dtype=float))


@contextmanager
def scipy_log_ndtr() -> Iterator[None]:
    """Within the block, Optuna's TPE evaluates log Φ with SciPy."""
    if _truncnorm is None or not hasattr(_truncnorm, "_log_ndtr"):
        yield
        return
    saved = _truncnorm._log_ndtr
    _truncnorm._log_ndtr = log_ndtr
    try:
        yield
    finally:
        _truncnorm._log_ndtr = saved
