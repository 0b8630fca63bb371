"""sampler: what drawing several suggestions from one TPE fit costs in search quality, and saves.

The same search run twice per seed, side by side: with poptune's sampler as the search uses it
(TPE over a window of the study, several suggestions a fit once the window is full) and with
every suggestion from a fresh fit (Optuna's TPE over the same window). No training: each trial's
validation curve comes from a known bowl over every key of poptune's space (``true_value``),
trials finish in random order with a fixed number in flight, and ASHA-like rungs (epochs 2 and
6 of 20) stop the worse two thirds. The figures, per number of trials in flight:

- the searcher's CPU per suggestion, over the trials after the window filled (where the two
  differ), as a ratio: fewer fits must cost less;
- the best true value among the trials that ran all 20 epochs, after 400 and after 800 trials:
  median over seeds for each sampler, and the median of the per-seed differences, which must
  stay within a tenth of a unit of val MSE (seeds spread by about 2 at 400 trials).

``python -m benchmarks.sampler --seeds 2`` for a quick look.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import warnings
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from benchmarks._common import Figure
from poptune.samplers import batch_tpe
from poptune.samplers.batch_tpe import BatchTPESampler
from poptune.samplers.window import BEST, RECENT, WindowedSampler
from poptune.spaces import define_space

TRIALS = 800
SEEDS = 12
IN_FLIGHT = (32, 64)
CHECKPOINTS = (400, 800)
EPOCHS = 20
RUNGS = (2, 6)
FAMILY = {"MLP1Layer": 8.0, "MLP2Layer": 2.0, "MLP3LayerDropout": 0.0, "MLP2LayerBatchNorm": 3.0}


def true_value(p: dict) -> float:
    """The val MSE a config converges to: 196 at the optimum, every key of the space counting."""
    v = 200.0 + FAMILY[p["family"]]
    v += 30 * (math.log10(p["lr"]) + 2.5) ** 2
    v += 1.2 * (math.log2(p["width_1"]) - 8) ** 2
    v += 0.8 * (math.log2(p["width_2"]) - 6) ** 2 if "width_2" in p else 0.0
    v += 0.6 * (math.log2(p["width_3"]) - 5) ** 2 if "width_3" in p else 0.0
    v += 20 * (p["dropout"] - 0.15) ** 2 if "dropout" in p else 0.0
    v += 0.5 * (math.log2(p["batch_size"]) - 8) ** 2
    v += 0.25 * (math.log10(p["weight_decay"]) + 4) ** 2
    v -= 3.0 if p.get("features") == "quantile" else 0.0
    v -= 1.0 if p.get("schedule") == "cosine" else 0.0
    return v


@dataclass(frozen=True)
class Run:
    best_at: dict[int, float]  # trials started -> best true value among finished full trials
    ms_per_suggestion: float  # over the suggestions after the window filled


def sampler(batched: bool, seed: int) -> WindowedSampler:
    # With batch_from past the end of the search, every suggestion is its own fit.
    tpe = BatchTPESampler(
        seed=seed,
        multivariate=True,
        group=True,
        constant_liar=True,
        batch_from=RECENT + BEST if batched else 10**9,
    )
    return WindowedSampler(tpe)


def search(batched: bool, seed: int, in_flight: int, trials: int = TRIALS) -> Run:
    rng = random.Random(seed)
    study = optuna.create_study(sampler=sampler(batched, seed))
    rungs: dict[int, list[float]] = {rung: [] for rung in RUNGS}
    running: list[optuna.Trial] = []
    best, best_at, finished, cpu, measured = math.inf, {}, 0, 0.0, 0
    for i in range(trials):
        t0 = time.process_time()
        trial = study.ask()
        define_space(trial)
        if finished >= RECENT + BEST:  # the window is full: where the two samplers differ
            cpu += time.process_time() - t0
            measured += 1
        running.append(trial)
        while len(running) >= in_flight or (i == trials - 1 and running):
            best = min(best, finish(study, running.pop(rng.randrange(len(running))), rungs, rng))
            finished += 1
        if i + 1 in CHECKPOINTS:
            best_at[i + 1] = best
    return Run(best_at, 1000 * cpu / measured if measured else math.nan)


def finish(study: optuna.Study, trial: optuna.Trial, rungs: dict, rng: random.Random) -> float:
    """Run ``trial`` through the rungs; its true value if it ran all epochs, else inf."""
    floor = true_value(trial.params)
    curve = [floor + 40.0 / epoch + rng.gauss(0, 0.7) for epoch in range(1, EPOCHS + 1)]
    for rung, values in rungs.items():
        values.append(curve[rung - 1])
        if len(values) >= 3 and curve[rung - 1] > sorted(values)[len(values) // 3]:
            for epoch in range(1, rung + 1):
                trial.report(curve[epoch - 1], epoch)
            study.tell(trial, state=TrialState.PRUNED)
            return math.inf
    for epoch in range(1, EPOCHS + 1):
        trial.report(curve[epoch - 1], epoch)
    study.tell(trial, min(curve))
    return floor


def figures(in_flight: int, seeds: int) -> list[Figure]:
    exact = [search(False, seed, in_flight) for seed in range(seeds)]
    batched = [search(True, seed, in_flight) for seed in range(seeds)]
    cpu_exact = statistics.mean(r.ms_per_suggestion for r in exact)
    cpu_batched = statistics.mean(r.ms_per_suggestion for r in batched)
    per_fit = min(
        batch_tpe.MOST_PER_FIT, math.ceil((in_flight - 1) / batch_tpe.RUNNING_PER_SUGGESTION)
    )
    out = [
        Figure(
            f"sampler, {in_flight} in flight: searcher CPU per suggestion, "
            f"{per_fit} suggestions a fit / one",
            cpu_batched / cpu_exact,
            "<= 0.8",
            f"{cpu_batched:.1f} vs {cpu_exact:.1f} ms a suggestion once the window of "
            f"{RECENT + BEST} finished trials is full (mean of {seeds} seeds)",
        )
    ]
    for at in CHECKPOINTS:
        a = [r.best_at[at] for r in exact]
        b = [r.best_at[at] for r in batched]
        diff = statistics.median(y - x for x, y in zip(a, b, strict=True))
        out.append(
            Figure(
                f"sampler, {in_flight} in flight, {at} trials: best true value, batched minus "
                "one fit a suggestion (median over seeds)",
                diff,
                "<= 0.1",
                f"batched median {statistics.median(b):.3f} (worst {max(b):.3f}), one fit a "
                f"suggestion {statistics.median(a):.3f} (worst {max(a):.3f}); optimum 196.000; "
                f"{seeds} seeds",
            )
        )
    return out


def run(seeds: int = SEEDS) -> list[Figure]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return [figure for in_flight in IN_FLIGHT for figure in figures(in_flight, seeds)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sampler")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    for figure in run(parser.parse_args().seeds):
        print(figure.line(), flush=True)
