"""Each trial's params in TPE's internal form, worked out once.

TPE turns every trial's params into its internal numbers at every fit, reading a running trial's
back from JSON; a trial's params do not change once TPE can see it, so :class:`RememberedParams`
(a mixin for the sampler) turns them once: a quarter of a fit at a 250-trial window, 32 running.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RememberedParams:
    """For a TPESampler subclass: ``_get_internal_repr`` (TPE's trials-to-arrays step) from
    each trial's params in TPE's internal form, worked out once per group of keys.

    A trial is known by its number, whether it is finished (a running trial's params include
    the constant liar's guesses; a finished one's are its own) and how many params it has. Past
    ``MOST_REMEMBERED`` rows, only those of the trials TPE is shown now are kept (trials leave
    TPE's window and do not come back; a few thousand rows cover it, a few rows a trial), and
    none is pickled."""

    MOST_REMEMBERED = 4_000

    def _get_internal_repr(
        self, trials: list[Any], search_space: dict[str, Any], study: Any
    ) -> dict[str, np.ndarray]:
        known = self.__dict__.setdefault("_remembered", {})
        if len(known) > self.MOST_REMEMBERED:
            # TPE asks for the trials below and those above gamma in two calls: keep the rows of
            # every trial from the oldest one shown, not only this call's half.
            oldest = min((trial.number for trial in trials), default=0)
            known = self.__dict__["_remembered"] = {
                key: row for key, row in known.items() if key[0] >= oldest
            }
            if len(known) > self.MOST_REMEMBERED:  # a window larger than the bound
                known.clear()
        names = tuple(search_space)
        rows = []
        for trial in trials:
            key = (trial.number, trial.state.is_finished(), len(trial.params), names)
            row = known.get(key, _UNKNOWN)
            if row is _UNKNOWN:
                params = self._get_params(trial, study)  # TPESampler's
                row = known[key] = (
                    tuple(d.to_internal_repr(params[n]) for n, d in search_space.items())
                    if search_space.keys() <= params.keys()
                    else None  # a trial without this group's keys: not in its estimator
                )
            if row is not None:
                rows.append(row)
        columns = zip(*rows, strict=True) if rows else ((),) * len(names)
        return {name: np.asarray(column) for name, column in zip(names, columns, strict=True)}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_remembered"}


_UNKNOWN = object()
