"""search: how busy a real `poptune search` keeps the machine, and how it compares with Optuna.

One 16-trial search (TPE, every trial 5 epochs, 1 CPU per trial: the shape of the issue's first
measurements) on the full-size built-in data (232,725 rows, 141,497 training rows after
dedupe), through `run_search` as the CLI calls it, timed from the driver by
`poptune.estimate.clock.SearchClock`. Every trial runs all its epochs (fifo), so that Optuna below
trains exactly the same thing; `benchmarks/estimate.py` runs an ASHA search. From it:

- busy share: Σ(epoch seconds measured inside `fit`) / (search wall × concurrent trials), with
  the fixed costs reported apart: Ray start and shutdown around the search, and the first trial
  start (worker process, torch import, data from the object store) before any slot trains;
- where the other idle slot-seconds go: between trials, between epochs, the tail;
- vs. plain Optuna: the same 16 configs, each for the epochs the search gave it, trained by
  `study.optimize(n_jobs=cores)` calling `fit` in this process (1 torch thread per job, as a
  1-CPU trial has);
- peak memory of a trial worker (VmHWM, read at every result) against an idle Ray worker, and
  whether a reused worker grows over the run: its RSS at each trial's first result and after
  each trial has ended (when the trial's own memory is gone, so trials of any config compare).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import ray

from benchmarks._common import FULL_ROWS, SEED, Figure
from benchmarks._idle import memory_kb
from poptune.data import DataSource, Prepared, load_source, prepare
from poptune.driver.runner import run_search
from poptune.driver.settings import SearchSettings
from poptune.estimate.clock import SearchClock
from poptune.spaces import define_space
from poptune.trainables import ModelConfig, fit

NUM_SAMPLES = 16
EPOCHS = 5


class MeasuredClock(SearchClock):
    """SearchClock plus memory: each worker's /proc status at every result it reports and when
    each of its trials has ended, and an idle Ray worker's (a CPU-less task sent before any
    trial starts)."""

    def __init__(self) -> None:
        super().__init__()
        self.memory: dict[int, list[dict[str, int]]] = {}
        self.first_results: dict[int, list[dict[str, int]]] = {}  # each trial's first result
        self.trial_ends: dict[int, list[dict[str, int]]] = {}  # after each trial has ended
        self.idle: dict[str, int] = {}
        self._idle_probe = None
        self._worker: dict[str, int] = {}  # trial id -> the pid of its worker

    def setup(self, **info) -> None:
        super().setup(**info)
        self._idle_probe = ray.remote(num_cpus=0)(memory_kb).remote()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        super().on_trial_result(iteration, trials, trial, result, **info)
        pid = self.epochs[-1].pid
        now = memory_kb(pid)
        self.memory.setdefault(pid, []).append(now)
        if self._worker.get(trial.trial_id) != pid:
            self._worker[trial.trial_id] = pid
            self.first_results.setdefault(pid, []).append(now)
        if self._idle_probe is not None:
            self.idle = ray.get(self._idle_probe)
            self._idle_probe = None

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        super().on_trial_complete(iteration, trials, trial, **info)
        pid = self._worker.get(trial.trial_id)
        if pid is not None:
            self.trial_ends.setdefault(pid, []).append(memory_kb(pid))


@dataclass(frozen=True)
class SearchRun:
    clock: MeasuredClock
    wall_s: float  # tuner.fit(), as run_search reports it
    call_s: float  # the whole run_search call: Ray start and shutdown included

    @property
    def slots(self) -> int:
        return len({e.pid for e in self.clock.epochs})

    def first_epoch_start(self) -> float:
        """Seconds from the search's start until the first slot began training."""
        return min(e.began for e in self.clock.epochs) - self.clock.started


def search_settings(
    storage: str, *, scheduler: str = "fifo", max_epochs: int = EPOCHS, grace_period: int = 1
) -> SearchSettings:
    return SearchSettings(
        data=DataSource(synthetic_rows=FULL_ROWS, synthetic_seed=SEED),
        num_samples=NUM_SAMPLES,
        max_epochs=max_epochs,
        grace_period=grace_period,
        scheduler=scheduler,
        cpus_per_trial=1,
        storage=storage,
        name="bench-search",
        seed=SEED,
        force=True,
    )


def run_poptune_search(settings: SearchSettings, prepared: Prepared) -> SearchRun:
    clock = MeasuredClock()
    started = time.perf_counter()
    outcome = run_search(settings, prepared, callbacks=[clock])
    return SearchRun(clock, outcome.wall_s, time.perf_counter() - started)


def optuna_wall(run: SearchRun, prepared: Prepared, n_jobs: int, seed: int) -> float:
    """The search's configs and epochs, run by Optuna threads calling `fit` in this process."""
    epochs = run.clock.epochs_per_trial()
    work = [(config, epochs[t]) for t, config in run.clock.configs.items() if t in epochs]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for config, _ in work:
        study.enqueue_trial(config)

    def objective(trial: optuna.Trial) -> float:
        define_space(trial)  # hands back the enqueued values
        config, n_epochs = work[trial.number]
        if ModelConfig.from_dict(trial.params) != ModelConfig.from_dict(config):
            raise RuntimeError(f"Optuna trial {trial.number} is not the search's config")
        return fit(config, prepared, epochs=n_epochs, seed=seed, threads=1).best["val_mse"]

    started = time.perf_counter()
    study.optimize(objective, n_trials=len(work), n_jobs=n_jobs)
    return time.perf_counter() - started


def memory_figures(clock: MeasuredClock, prepared: Prepared) -> list[Figure]:
    mb = 1 / 1024
    peaks = {pid: max(m.get("VmHWM", 0) for m in ms) for pid, ms in clock.memory.items()}
    worst = max(peaks, key=peaks.get)
    private = max(m.get("RssAnon", 0) + m.get("RssShmem", 0) for m in clock.memory[worst])
    idle_private = clock.idle.get("RssAnon", 0) + clock.idle.get("RssShmem", 0)
    pss = max(m.get("Pss", 0) for m in clock.memory[worst])

    def series(samples: list[dict[str, int]]) -> str:
        return ", ".join(f"{m.get('VmRSS', 0) * mb:.0f}" for m in samples)

    # VmHWM only ever rises: a worker's growth shows in its RSS when each trial has ended
    # (the trial's memory given back, so trials of any config compare), and at each trial's
    # first result (the same point of every trial, but then the config's own memory counts).
    ends = {
        pid: [m for m in ms if "VmRSS" in m]
        for pid, ms in clock.trial_ends.items()
        if sum("VmRSS" in m for m in ms) >= 2
    }
    growth = {pid: (ms[-1]["VmRSS"] - ms[0]["VmRSS"]) * mb for pid, ms in ends.items()}
    first = "; ".join(
        f"{series(ms)} MB over {len(ms)} trials" for ms in clock.first_results.values()
    )
    ended = "; ".join(
        f"{series(ms)} MB ({growth[pid]:+.0f} MB, last - first)" for pid, ms in ends.items()
    )
    data_mb = (prepared.x_train.nbytes + prepared.x_val.nbytes) * mb / 1024
    return [
        Figure(
            "memory: trial worker peak RSS above an idle Ray worker",
            (peaks[worst] - clock.idle.get("VmRSS", 0)) * mb,
            "<= 400",
            f"peak RSS (VmHWM) {peaks[worst] * mb:.0f} MB, the worst of {len(peaks)} workers; "
            f"an idle Ray worker {clock.idle.get('VmRSS', 0) * mb:.0f} MB. Without shared "
            f"library pages (RssAnon + RssShmem, sampled at each epoch's end): "
            f"{private * mb:.0f} MB vs {idle_private * mb:.0f} MB, "
            f"{(private - idle_private) * mb:.0f} MB above. PSS (shared pages split among the "
            f"processes mapping them, sampled at each epoch's end): {pss * mb:.0f} MB vs "
            f"{clock.idle.get('Pss', 0) * mb:.0f} MB. The {data_mb:.0f} MB of training data "
            "reach the workers once, through the object store (tune.with_parameters)",
            unit=" MB",
        ),
        Figure(
            "memory: growth of a reused trial worker over the run (RSS after its trials)",
            max(growth.values(), default=float("nan")),
            "",
            f"RSS of each worker after each of its trials ended, in order: {ended or 'n/a'}. "
            f"RSS at each trial's first result, in order: {first}",
            unit=" MB",
        ),
    ]


def run() -> list[Figure]:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="poptune-bench-") as tmp:
        settings = search_settings(str(Path(tmp) / "runs"))
        prepared = prepare(load_source(settings.data), seed=SEED, dedupe=settings.dedupe)
        search = run_poptune_search(settings, prepared)
    clock, wall, k = search.clock, search.wall_s, search.slots
    busy, first = clock.busy_s, search.first_epoch_start()
    idle = clock.idle_breakdown(wall, k)
    epochs = clock.epochs_per_trial()
    trial_epochs = sum(epochs.values())
    figures = [
        Figure(
            "search: busy share Σ(trial training) / ((wall - first trial start) × slots)",
            busy / ((wall - first) * k),
            ">= 0.85",
            f"{len(epochs)} trials, {trial_epochs} trial-epochs on {len(prepared.x_train):,} "
            f"rows: Σ training {busy:.1f} s; search wall {wall:.1f} s, of which {first:.1f} s "
            f"before the first epoch; {k} slots. Counting that start too: "
            f"{busy / (wall * k):.3f}. Idle slot-seconds: "
            + ", ".join(f"{name.replace('_', ' ')} {s:.1f}" for name, s in idle.items()),
        ),
        Figure(
            "search: fixed cost, first trial start",
            first,
            "",
            "Tune's start to the first epoch (worker process, Ray Tune and torch imports, "
            "data); per slot: "
            + ", ".join(f"{s:.1f} s" for s in sorted(clock.gaps()["first_trial"])),
            unit=" s",
        ),
        Figure(
            "search: fixed cost, Ray start and shutdown",
            search.call_s - wall,
            "",
            f"run_search call {search.call_s:.1f} s minus its search wall {wall:.1f} s",
            unit=" s",
        ),
        *memory_figures(clock, prepared),
    ]
    optuna_s = optuna_wall(search, prepared, n_jobs=cores, seed=SEED)
    figures.append(
        Figure(
            "search vs plain Optuna: poptune wall / Optuna wall",
            wall / optuna_s,
            "<= 0.8",
            f"same {len(epochs)} configs, {trial_epochs} epochs: poptune search {wall:.1f} s vs "
            f"optuna study.optimize(n_jobs={cores}) calling fit {optuna_s:.1f} s. With Ray's "
            f"start and shutdown: {search.call_s / optuna_s:.3f}; without the first trial "
            f"start: {(wall - first) / optuna_s:.3f}. Optuna's threads train "
            f"{busy / optuna_s:.2f}× as fast as one (Σ training / its wall): with no overhead "
            f"at all, {cores} processes could reach {busy / cores / optuna_s:.2f} of its time",
        )
    )
    return figures
