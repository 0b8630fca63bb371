"""Optuna's TPE, made cheaper for the calls poptune makes without changing what it samples.

Two swaps of module globals, each made only while poptune's sampler runs (Tune's driver asks
from one thread), so any other Optuna used in the process between suggestions is left as it was:

- **log Φ in C.** For integer and discrete keys (the widths, the batch size) TPE scores every
  candidate against every kernel through ``log Φ`` (the log of the normal CDF), which Optuna 5
  evaluates one number at a time in Python (``np.frompyfunc``): two thirds of TPE's own CPU at
  1,000 trials. ``scipy.special.log_ndtr`` is the routine Optuna's code was copied from,
  vectorised; it agrees to within 6e-8 relative (Optuna's own shortcut above 6 standard
  deviations is the one that is off) and makes TPE's own work about three times cheaper
  (39 → 13 ms a suggestion at 500 trials, in memory, 32 running).
- **One split per suggestion.** With ``group=True`` TPE samples each group of keys on its own
  (poptune's space has three: the keys every family has, ``width_2``, ``width_3``/``dropout``),
  and for each it splits the same trials into its good and bad sets, sorting them by value
  each time; the split does not depend on the group, so within one ``sample_relative`` call
  it is made once (a third of TPE's cost at a 250-trial window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import special

try:  # Optuna's private modules: if a later Optuna moves them, TPE runs at its own speed
    from optuna.samplers._tpe import _truncnorm
    from optuna.samplers._tpe import sampler as _tpe_sampler
except ImportError:  # pragma: no cover
    _truncnorm = _tpe_sampler = None


def log_ndtr(a: np.ndarray) -> np.ndarray:
    return special.log_ndtr(np.asarray(a, dtype=float))


@contextmanager
def faster_tpe() -> Iterator[None]:
    """Within the block (one suggestion), TPE evaluates log Φ with SciPy and splits the trials
    into good and bad once."""
    with (
        _swapped(_truncnorm, "_log_ndtr", lambda _own: log_ndtr),
        _swapped(_tpe_sampler, "_split_trials", _split_once),
    ):
        yield


def _split_once(split: Callable[..., Any]) -> Callable[..., Any]:
    """``split`` (TPE's ``_split_trials``) remembering its last answer for the same trials.

    The trials are the same objects for every group of one suggestion (the sampler reads the
    study once per suggestion), so their identities and ``n_below`` are the key."""
    last: list[Any] = [None, None]

    def split_trials(study: Any, trials: list[Any], n_below: int) -> Any:
        key = (n_below, tuple(map(id, trials)))
        if last[0] != key:
            below, above = split(study, trials, n_below)
            last[:] = [key, (below, above)]
        below, above = last[1]
        return list(below), list(above)  # fresh lists, as the caller may change them

    return split_trials


@contextmanager
def _swapped(module: Any, name: str, replacement: Callable[[Any], Any]) -> Iterator[None]:
    if module is None or not hasattr(module, name):
        yield
        return
    own = getattr(module, name)
    setattr(module, name, replacement(own))
    try:
        yield
    finally:
        setattr(module, name, own)
