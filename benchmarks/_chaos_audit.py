"""What a search that lost worker nodes left behind, checked against what it was asked for.

- Tune's experiment state lists every trial asked for exactly once, each finished or errored
  (after its retries), none pending or running;
- each trial's own result.json (every row Tune logged, duplicates included, unlike
  :func:`poptune.analysis.results.read_results`) shows that a restart resumed from the last
  checkpoint: it re-reports at most one epoch already reported (the one in flight when its node
  died, if its result was logged but its checkpoint was not), and a finished trial never runs
  again;
- the Optuna study copy (optuna_study.db) holds every trial once, in the state Tune ended it in.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from poptune.layout import STUDY_FILE

FINISHED = ("TERMINATED", "ERROR")
# The Optuna state each Tune end may be told as (poptune/driver/searcher.py).
STUDY_STATES = {"TERMINATED": {"COMPLETE", "PRUNED"}, "ERROR": {"FAIL"}}


@dataclass(frozen=True)
class TrialAudit:
    trial_id: str
    status: str
    failures: int  # Tune's count of this trial's failures (each one a retry, or its end)
    epochs: tuple[int, ...]  # every epoch as logged, in order, repeats included
    resumed_from: tuple[int, ...]  # each row's resumed_from_epoch
    error: str = ""  # the last line of its error file, if it errored

    def restarts(self) -> list[tuple[int, int]]:
        """(last epoch logged before, epoch resumed from) at each restart seen in the rows."""
        found = []
        for i in range(1, len(self.epochs)):
            rewound = self.epochs[i] <= self.epochs[i - 1]
            if rewound or self.resumed_from[i] != self.resumed_from[i - 1]:
                found.append((self.epochs[i - 1], self.resumed_from[i]))
        return found

    @property
    def rewinds(self) -> list[int]:
        """Epochs already logged that each restart ran again (0: none lost)."""
        return [max(0, last - resumed) for last, resumed in self.restarts()]

    @property
    def redone(self) -> int:
        return sum(self.rewinds)

    def ran_after_finishing(self, max_epochs: int) -> bool:
        """A row after the final epoch's: the finished trial was run again."""
        return max_epochs in self.epochs[:-1]

    def complete(self, max_epochs: int) -> bool:
        return sorted(set(self.epochs)) == list(range(1, max_epochs + 1))


@dataclass
class Audit:
    asked: int
    max_epochs: int
    trials: list[TrialAudit]
    study_trials: int = 0
    study_problems: list[str] = field(default_factory=list)

    @property
    def statuses(self) -> Counter:
        return Counter(t.status for t in self.trials)

    @property
    def retried(self) -> int:
        return sum(t.failures > 0 for t in self.trials)

    @property
    def failures(self) -> int:
        return sum(t.failures for t in self.trials)

    @property
    def redone(self) -> int:
        return sum(t.redone for t in self.trials)

    @property
    def worst_rewind(self) -> int:
        return max((r for t in self.trials for r in t.rewinds), default=0)

    @property
    def repeated_finished(self) -> int:
        return sum(t.ran_after_finishing(self.max_epochs) for t in self.trials)

    def sound(self, trial: TrialAudit) -> bool:
        """Finished or errored, and if finished then whole, with no restart that lost more
        than the epoch it was in."""
        whole = trial.status != "TERMINATED" or trial.complete(self.max_epochs)
        return trial.status in FINISHED and whole and all(r <= 1 for r in trial.rewinds)

    @property
    def lost(self) -> int:
        """Trials asked for and not accounted for soundly (missing, unfinished, cut short)."""
        return self.asked - len({t.trial_id for t in self.trials if self.sound(t)})

    def problems(self) -> list[str]:
        """Everything that breaks the promise; empty when every trial is accounted for."""
        found = []
        ids = Counter(t.trial_id for t in self.trials)
        if len(ids) != self.asked or any(n > 1 for n in ids.values()):
            listed = f"{len(ids)} distinct trial(s) of {len(self.trials)} listed"
            found.append(f"{listed}, {self.asked} asked")
        found += [f"{t.trial_id} ended {t.status}" for t in self.trials if t.status not in FINISHED]
        found += [
            f"{t.trial_id} finished without epochs 1..{self.max_epochs}: {t.epochs}"
            for t in self.trials
            if t.status == "TERMINATED" and not t.complete(self.max_epochs)
        ]
        found += [
            f"{t.trial_id} lost more than the epoch it was in: restarts {t.restarts()}"
            for t in self.trials
            if any(r > 1 for r in t.rewinds)
        ]
        found += [
            f"{t.trial_id} ran again after finishing: {t.epochs}"
            for t in self.trials
            if t.ran_after_finishing(self.max_epochs)
        ]
        if self.study_trials != self.asked:
            found.append(f"the study holds {self.study_trials} trial(s), {self.asked} asked")
        return found + self.study_problems

    def summary(self) -> str:
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.statuses.items()))
        return (
            f"{len(self.trials)} of {self.asked} trials ({states}); {self.retried} retried "
            f"({self.failures} failures), {self.redone} logged epoch(s) run again (worst restart "
            f"{self.worst_rewind}), {self.repeated_finished} finished trial(s) run again; study "
            f"{self.study_trials} trials"
            + "".join(f"; {t.trial_id} errored: {t.error}" for t in self.trials if t.error)
        )


def _rows(result_file: Path) -> list[dict]:
    rows = []
    if not result_file.exists():
        return rows
    for line in result_file.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed writer: the driver's own, not a trial's
    return rows


def running_epochs(result_files: Iterable[Path], max_epochs: int) -> Counter:
    """Epochs each trial still running has logged since it last (re)started, by the (node id,
    worker pid) that trains it now: how much work a kill of that node would cost it. A trial
    whose last row is its last epoch is left out, as its worker may already be idle."""
    running: Counter = Counter()
    for path in result_files:
        rows = [r for r in _rows(path) if "epoch" in r]
        if not rows or rows[-1].get("done") or int(rows[-1]["epoch"]) >= max_epochs:
            continue
        workers = [(r.get("node_id"), r.get("pid")) for r in rows]
        running[workers[-1]] = sum(
            1 for _ in itertools.takewhile(workers[-1].__eq__, workers[::-1])
        )
    return running


def _trial_audit(trial) -> TrialAudit:
    # trial.path: where the trial's files are in the (local) storage; local_path needs Ray.
    rows = [r for r in _rows(Path(trial.path) / "result.json") if "epoch" in r]
    return TrialAudit(
        trial_id=trial.trial_id,
        status=trial.status,
        failures=int(trial.num_failures),
        epochs=tuple(int(r["epoch"]) for r in rows),
        resumed_from=tuple(int(r.get("resumed_from_epoch", 0)) for r in rows),
        error=_last_error(Path(trial.path)) if trial.status == "ERROR" else "",
    )


def _last_error(trial_dir: Path) -> str:
    """The last non-blank line of the trial's error file: why its last failure ended it."""
    path = trial_dir / "error.txt"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
    return lines[-1][:300] if lines else "no error.txt"


def audit(exp_dir: Path, asked: int, max_epochs: int) -> Audit:
    from ray.tune import ExperimentAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = ExperimentAnalysis(str(exp_dir.absolute()))
    found = Audit(asked, max_epochs, [_trial_audit(t) for t in analysis.trials])
    _check_study(found, exp_dir, {t.trial_id: t for t in analysis.trials})
    return found


def _check_study(found: Audit, exp_dir: Path, trials: dict) -> None:
    """Each Tune trial matches exactly one study trial by its sampled params, in the state its
    end should have been told as; and no study trial is left over."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = exp_dir / STUDY_FILE
    if not path.exists():
        found.study_problems.append(f"no {STUDY_FILE} in the experiment")
        return
    study = optuna.load_study(study_name=exp_dir.name, storage=f"sqlite:///{path}")
    left = list(study.get_trials(deepcopy=False))
    found.study_trials = len(left)
    for trial_id, trial in trials.items():
        config = trial.config
        matches = [
            t for t in left if t.params and all(config.get(k) == v for k, v in t.params.items())
        ]
        if len(matches) != 1:
            found.study_problems.append(f"{trial_id} matches {len(matches)} study trial(s)")
            continue
        left.remove(matches[0])
        state = matches[0].state.name
        if state not in STUDY_STATES.get(trial.status, set()):
            found.study_problems.append(f"{trial_id} ended {trial.status}, told as {state}")
    if left:
        found.study_problems.append(f"{len(left)} study trial(s) match no Tune trial")
