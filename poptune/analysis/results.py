"""Reading a finished (or half-finished) search through Tune's own result API, and the views of
it the analysis picks its candidates from: ranked, top distinct configs, best per family.

Only trials listed in Tune's experiment state count: a restore can leave orphan trial folders on
disk, and those must not appear in any total.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from poptune import uri
from poptune.errors import ExperimentError
from poptune.metric import METRIC
from poptune.trainables.config import FAMILIES, ModelConfig


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    status: str  # Tune's: TERMINATED, ERROR, RUNNING, PENDING, PAUSED
    config: ModelConfig
    history: tuple[dict, ...]  # one dict per epoch reported, in epoch order
    node_id: str | None

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def best(self) -> dict | None:
        finite = [h for h in self.history if not h.get("diverged") and _finite(h.get(METRIC))]
        return min(finite, key=lambda h: h[METRIC]) if finite else None

    @property
    def best_val_mse(self) -> float | None:
        return self.best[METRIC] if self.best else None

    @property
    def best_epoch(self) -> int | None:
        return int(self.best["epoch"]) if self.best else None

    @property
    def resumed(self) -> bool:
        return any(h.get("resumed_from_epoch", 0) > 0 for h in self.history)


@dataclass(frozen=True)
class SearchResults:
    trials: tuple[TrialRecord, ...]

    @property
    def terminated(self) -> int:
        return sum(t.status == "TERMINATED" for t in self.trials)

    @property
    def errored(self) -> int:
        return sum(t.status == "ERROR" for t in self.trials)

    @property
    def unfinished(self) -> int:
        return len(self.trials) - self.terminated - self.errored

    def ranked(self) -> list[TrialRecord]:
        """Trials with a finite best val_mse, best first."""
        scored = [t for t in self.trials if t.best_val_mse is not None]
        return sorted(scored, key=lambda t: t.best_val_mse)

    def best(self) -> TrialRecord:
        ranked = self.ranked()
        if not ranked:
            raise ExperimentError(
                f"none of the {len(self.trials)} trial(s) reported a finite {METRIC}; "
                "nothing to analyze (see the trial errors in the experiment dir)"
            )
        return ranked[0]


def top_distinct(results: SearchResults, k: int) -> list[TrialRecord]:
    """The best ``k`` trials with pairwise different configs (a resumed or re-sampled config
    counts once: averaging a model with itself is no ensemble)."""
    chosen: list[TrialRecord] = []
    seen = set()
    for trial in results.ranked():
        if trial.config not in seen:
            seen.add(trial.config)
            chosen.append(trial)
        if len(chosen) == k:
            break
    return chosen


def best_per_family(results: SearchResults) -> dict[str, list[TrialRecord]]:
    """Ranked trials of each family that reported a finite val_mse, best first (FAMILIES order)."""
    ranked = results.ranked()
    grouped = {family: [t for t in ranked if t.config.family == family] for family in FAMILIES}
    return {family: trials for family, trials in grouped.items() if trials}


def read_results(experiment: str | Path) -> SearchResults:
    """Every trial Tune knows of in ``experiment`` (a local path or a storage URI)."""
    from ray.tune import ExperimentAnalysis  # Ray stays out of import time for the CLI's --help

    # Tune takes a relative path for a URI relative to nothing and finds no state: absolute here.
    where = str(experiment) if uri.is_uri(experiment) else str(Path(experiment).absolute())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = ExperimentAnalysis(where)
    except (ValueError, FileNotFoundError) as exc:
        raise ExperimentError(
            f"{experiment}: not a poptune experiment directory (no Tune experiment state); "
            "pass the folder `poptune search` created, <storage>/<name>"
        ) from exc
    frames = analysis.trial_dataframes
    records = []
    for trial in analysis.trials:
        frame = frames.get(trial.trial_id)
        history: tuple[dict, ...] = ()
        node = None
        if frame is not None and not frame.empty and "epoch" in frame.columns:
            # A resumed trial re-reports the epoch it was in when it stopped: keep the last.
            frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch")
            history = tuple(frame.to_dict("records"))
            node = history[-1].get("node_id")
        records.append(
            TrialRecord(
                trial_id=trial.trial_id,
                status=trial.status,
                config=ModelConfig.from_dict(trial.config),
                history=history,
                node_id=node,
            )
        )
    return SearchResults(trials=tuple(records))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
