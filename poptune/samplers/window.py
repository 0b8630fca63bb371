"""TPE over a bounded window of the study, so a suggestion costs the same at trial 5,000 as at 250.

Optuna's TPE rebuilds its model from every trial of the study on every suggestion, and with a
conditional space (``group=True``) and a constant liar it does so once per group of keys, each
time reading the study's running trials back from storage. In a poptune search (SQLite study,
32 running trials) that measured ~100 ms per suggestion at 250 finished trials and ~170 ms at
1,000, growing with every trial: at a few hundred slots the driver can no longer hand out trials
as fast as they end.

:class:`WindowedSampler` gives the sampler it wraps a view of the study instead, read from
storage once per suggestion, that holds

- every trial not finished (running ones: the constant liar's "bad guesses"; waiting ones), and
- of the finished trials, the ``recent`` newest and the ``best`` best by TPE's own ranking
  (complete trials by value, then pruned ones by the last epoch they reached and its value).

What it costs in quality: nothing until a search has more than ``recent + best`` finished
trials (the view is then the whole study). Past that, TPE's "good" group is unchanged: its size
is counted over the whole study (:meth:`WindowedSampler.study_gamma`; at most 25 trials) and all
of its trials are among the ``best`` kept. Only its "bad" group is estimated from the newest
``recent`` trials rather than from all of them, which TPE's default weights already favour
(older trials weigh linearly less). On a surrogate of poptune's space (no training; 800 trials,
32 at a time, ASHA-like rungs, 5 seeds) the best value found was the same within the spread of
seeds for the whole study, this window (250) and a window of 100 (50 + 50), which costs about a
fifth less CPU per suggestion but did worse on its worst seed: the window stays at 250.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Container
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from poptune.compat.optuna_compat import default_gamma

RECENT = 200
BEST = 50
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class StudyWindow:
    """A study as the sampler sees it: the same study, fewer trials, read once."""

    def __init__(self, study: Study, trials: list[FrozenTrial]) -> None:
        self._study = study
        self._trials = trials

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_study", "_trials"):
            raise AttributeError(name)  # pickle's probes, and a half-built copy: not the study's
        return getattr(self._study, name)  # directions, _storage, _study_id, ...

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._trials if states is None else [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class WindowedSampler(BaseSampler):
    """``sampler`` (TPE), shown at most ``recent + best`` finished trials (see the module)."""

    def __init__(self, sampler: BaseSampler, *, recent: int = RECENT, best: int = BEST) -> None:
        if recent < 1 or best < 25:
            # TPE's good group holds up to 25 trials: fewer best ones would change it.
            raise ValueError(f"need recent >= 1 and best >= 25, got {recent} and {best}")
        self._sampler = sampler
        self._recent = recent
        self._best = best
        self._window: StudyWindow | None = None
        self._window_of: int | None = None  # the trial number the window was read for
        self._kept: _Kept | None = None  # which finished trials the window keeps
        self._space: dict[str, BaseDistribution] | None = None  # TPE's, for the key sets seen
        self._space_of: frozenset[frozenset[str]] = frozenset()
        if isinstance(sampler, TPESampler) and sampler._gamma is None:
            # TPE sizes its good group from the finished trials it is shown (a tenth, at most
            # 25); shown a window, it must count the whole study's, or the window would shrink
            # the good group.
            sampler._gamma = self.study_gamma

    def study_gamma(self, shown: int) -> int:
        """Optuna's default size of TPE's good group, for the study rather than the window."""
        finished = len(self._kept.seen) if self._kept is not None else 0  # at the last window
        return default_gamma(max(shown, finished))

    def __getstate__(self) -> dict[str, Any]:
        # The window is a per-suggestion view: a saved searcher (Tune's checkpoint) keeps only
        # the sampler and its settings, and reads a new window after --resume.
        per_suggestion = {"_window": None, "_window_of": None, "_kept": None, "_space": None}
        return {**self.__dict__, **per_suggestion, "_space_of": frozenset()}

    @property
    def sampler(self) -> BaseSampler:
        return self._sampler

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._window = None
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        # TPE splits the keys into groups by which trials have them; one trial of each set of
        # keys gives the same groups (a set seen before never splits them again) at a fraction
        # of the cost of reading every trial of the window, and no new set, the same groups.
        window = self.window(study, trial)
        key_sets: dict[frozenset[str], FrozenTrial] = {}
        for t in window._trials:
            if t.state in FINISHED:
                key_sets.setdefault(frozenset(t.distributions), t)
        if self._space is None or not key_sets.keys() <= self._space_of:
            self._space = self._sampler.infer_relative_search_space(
                StudyWindow(study, list(key_sets.values())), trial
            )
            self._space_of = self._space_of | key_sets.keys()
        return dict(self._space)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler.sample_relative(self.window(study, trial), trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        window = self.window(study, trial)
        return self._sampler.sample_independent(window, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: list[float] | None,
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def window(self, study: Study, trial: FrozenTrial) -> StudyWindow:
        """The view for ``trial``'s suggestions: read once, at its first suggestion."""
        if self._window is None or self._window_of != trial.number:
            trials = study._get_trials(deepcopy=False, use_cache=False)
            self._window = StudyWindow(study, self.select(trials, study.direction))
            self._window_of = trial.number
        return self._window

    def select(self, trials: list[FrozenTrial], direction: StudyDirection) -> list[FrozenTrial]:
        """The window over ``trials`` (the study's, in number order). Kept up to date from one
        call to the next (finished trials never change), so a call looks at the trials that were
        unfinished last time and the new ones, not the whole study: at 2,000 trials a pass over
        the study took a seventh of a suggestion."""
        if self._kept is None or self._kept.direction != direction:
            self._kept = _Kept(self._recent, self._best, direction)
        kept = self._kept
        # Optuna numbers a study's trials 0, 1, 2, ... and returns them in that order.
        numbered = bool(trials) and trials[0].number == 0 and trials[-1].number == len(trials) - 1
        if not numbered:  # never from Optuna's storages: look at every trial, now and next time
            kept.open, kept.looked = set(), 0
        for i in [*kept.open, *range(kept.looked, len(trials))]:
            trial = trials[i]
            if trial.state in FINISHED:
                kept.open.discard(i)
                if trial.number not in kept.seen:
                    kept.add(trial)
            else:
                kept.open.add(i)
        kept.looked = len(trials)
        if not numbered:
            kept.open, kept.looked = set(), 0
        if len(kept.seen) <= self._recent + self._best:
            return trials
        if numbered:
            return [trials[number] for number in sorted(kept.numbers() | kept.open)]
        keep = kept.numbers()
        return [t for t in trials if t.state not in FINISHED or t.number in keep]


class _Kept:
    """Which finished trials a window keeps, for a study that only grows: the ``recent``
    highest-numbered ones, and the ``best`` best-ranked of the others (the others only ever gain
    trials, so their best are kept exactly by inserting each newcomer and dropping the worst)."""

    def __init__(self, recent: int, best: int, direction: StudyDirection) -> None:
        self.direction = direction
        self.seen: set[int] = set()
        self.open: set[int] = set()  # trials not finished when last looked at
        self.looked = 0  # how many of the study's trials were looked at
        self._recent_count, self._best_count = recent, best
        self._sign = 1.0 if direction == StudyDirection.MINIMIZE else -1.0
        self._numbers: list[int] = []  # every finished trial's number, sorted
        self._ranks: dict[int, tuple[float, ...]] = {}  # of the newest, until they are not
        self._best: list[tuple[tuple[float, ...], int]] = []  # (rank, number): best older ones

    def add(self, trial: FrozenTrial) -> None:
        number = trial.number
        self.seen.add(number)
        self._ranks[number] = _rank(trial, self._sign)
        at = bisect.bisect_left(self._numbers, number)
        self._numbers.insert(at, number)
        if len(self._numbers) <= self._recent_count:
            return
        # The trial no longer among the newest: the new one itself if it lands below them (a
        # long trial finishing late), else the newest-but-one it pushed out.
        boundary = len(self._numbers) - self._recent_count - 1
        older = number if at <= boundary else self._numbers[boundary]
        bisect.insort(self._best, (self._ranks.pop(older), older))
        del self._best[self._best_count :]

    def numbers(self) -> set[int]:
        return {*self._numbers[-self._recent_count :], *(number for _, number in self._best)}


def _rank(trial: FrozenTrial, sign: float) -> tuple[float, ...]:
    """TPE's order of goodness: complete trials by value, then pruned ones by the last step
    they reached (later is better) and their value there."""
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        return (0.0, sign * trial.value)
    if trial.intermediate_values:
        step, value = max(trial.intermediate_values.items())
        return (1.0, -step, math.inf if math.isnan(value) else sign * value)
    return (2.0,)
