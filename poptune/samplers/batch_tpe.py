"""TPE that, in a long search with many trials running, serves a few suggestions from each fit.

Optuna's TPE fits its model (a good and a bad Parzen estimator for each group of keys) afresh
for every suggestion, and the fit is most of a suggestion's cost (measured at 2,000 trials, 32
running: about 6 of 10 ms). Once the study is large the fits of consecutive suggestions barely
differ: each sees the same few hundred finished trials, plus a trial or two that just ended,
and the constant liar's guesses for the trials started since.

So once TPE is shown ``batch_from`` finished trials (poptune: its window's full 250) and more
than 8 trials run, :class:`BatchTPESampler` draws the next ``⌈running / 4⌉`` suggestions (at
most 16) of a group of keys from one fit, each the best of its own ``n_ei_candidates`` draws
exactly as TPE picks one, and refits when they are used up. A suggestion is then made from a
fit at most ``running / 4`` suggestions old: it does not see the trials started or ended since,
where it already could not see the outcomes of the ``running`` trials in flight.

What that costs, measured on a known bowl over poptune's space (``python -m benchmarks
sampler``: no training, ASHA-like rungs, 12 seeds, the same searches with one fit a suggestion
beside them): nothing measurable. With 32 trials in flight (8 suggestions a fit) the median
per-seed difference in the best value found was +0.015 and -0.009 at 400 and 800 trials, with
64 (16 a fit) 0.000 and +0.023, where seeds spread by ~2 at 400 trials; the searcher's CPU per
suggestion once the window is full fell to 0.34x (2.7 against 8.0 ms) and 0.28x. An eighth of
the running trials a fit (4 and 8) measured the same quality for less saving. Several
suggestions a fit from the start did cost: early on each outcome moves the model a lot, and
such a search was behind at 200 and 400 trials (6 seeds). Before ``batch_from``, and with 8 or
fewer trials running, a fit serves one suggestion and the sampler is Optuna's TPE, draw for
draw (the same seed gives the same suggestions).

Two of TPE's steps are made cheaper for every suggestion, without changing what it samples: its
candidates are drawn and scored with Φ and log Φ in C (:mod:`poptune.samplers.parzen`), and the
split of the trials into the good and the bad set is made once per suggestion. With
``group=True`` TPE samples each group of keys on its own (poptune's space has three: the keys
every family has, ``width_2``, ``width_3``/``dropout``) and splits the same trials for each,
sorting them by value each time; the split does not depend on the group (a third of TPE's cost
at a 250-trial window).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from poptune.compat.optuna_compat import tpe_sampler as _tpe_sampler
from poptune.samplers import parzen
from poptune.samplers.remembered_params import RememberedParams

BATCH_ABOVE = 8  # trials running: with this many or fewer, each suggestion has its own fit
RUNNING_PER_SUGGESTION = 4  # trials running, per suggestion one fit serves
MOST_PER_FIT = 16


class BatchTPESampler(RememberedParams, TPESampler):
    """Optuna's TPE, serving ``⌈running / 4⌉`` suggestions (at most 16) from each fit once it is
    shown ``batch_from`` finished trials and more than 8 run (see the module), each trial's
    params turned into TPE's form once, its split made once a suggestion and its candidates
    scored in C; takes TPESampler's arguments too."""

    # A class default too: a sampler unpickled from a search saved before it had a split memo.
    _last_split: tuple[Any, ...] | None = None

    def __init__(self, *args: Any, batch_from: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_from = batch_from
        # Per group of keys: its search space, and the suggestions drawn for it not yet served.
        self._drawn: dict[tuple[str, ...], tuple[dict[str, BaseDistribution], list[dict]]] = {}
        self._last_split: tuple[Any, ...] | None = None  # this suggestion's, see _split

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_last_split": None}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._last_split = None
        super().before_trial(study, trial)

    def _sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        key = tuple(search_space)
        space, drawn = self._drawn.get(key, (None, []))
        if space != search_space or not drawn:
            drawn = self._draw(study, trial, search_space)
            self._drawn[key] = (search_space, drawn)
        return drawn.pop(0)

    def _draw(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> list[dict[str, Any]]:
        """TPESampler._sample of Optuna 5.0, drawing ``count`` suggestions from its one fit."""
        if self._constant_liar:
            states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING]
        else:
            states = [TrialState.COMPLETE, TrialState.PRUNED]
        trials = study._get_trials(deepcopy=False, states=states, use_cache=not self._constant_liar)
        trials = [t for t in trials if t.number != trial.number]
        running = sum(t.state == TrialState.RUNNING for t in trials)
        finished = len(trials) - running
        count = 1
        if finished >= self._batch_from and running > BATCH_ABOVE:
            count = min(MOST_PER_FIT, math.ceil(running / RUNNING_PER_SUGGESTION))

        if self._gamma is None:
            single = len(study.directions) == 1
            self._gamma = (
                _tpe_sampler.default_gamma if single else _tpe_sampler.default_gamma_multiobjective
            )
        below, above = self._split(study, trials, self._gamma(finished))
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)

        n = self._n_ei_candidates
        samples = parzen.sample(mpe_below, self._rng.rng, n * count)
        scores = self._compute_acquisition_func(samples, mpe_below, mpe_above)
        # Suggestion i is the best of candidates [i n, (i + 1) n): each as TPE would pick it.
        picks = np.arange(count) * n + scores.reshape(count, n).argmax(axis=1)
        return [
            {
                name: dist.to_external_repr(samples[name][i].item())
                for name, dist in search_space.items()
            }
            for i in picks
        ]

    def _split(
        self, study: Study, trials: list[FrozenTrial], n_below: int
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """TPE's split of ``trials`` into the good and the bad set, made once for all groups of
        keys of one suggestion: they see the same trial objects (the study is read once per
        suggestion), so the objects' identities and ``n_below`` are the key. The study and the
        trials are held with it, so that no identity can be reused while it is remembered."""
        key = (id(study), n_below, tuple(map(id, trials)))
        if self._last_split is None or self._last_split[0] != key:
            split = _tpe_sampler._split_trials(study, trials, n_below)
            self._last_split = (key, study, trials, split)
        below, above = self._last_split[3]
        return list(below), list(above)  # fresh lists, as the caller may change them

    def _compute_acquisition_func(
        self, samples: dict[str, np.ndarray], mpe_below: Any, mpe_above: Any
    ) -> np.ndarray:
        return parzen.acquisition(samples, mpe_below, mpe_above)
