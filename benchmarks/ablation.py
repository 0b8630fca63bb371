"""ablation: each lever of the search taken away in turn, at equal budget, on the same splits.

The quality benchmark compares poptune with other tools; this one asks which of poptune's own
levers earn their place. On the built-in data at the real difficulty (≈20k tracks), 3 seeds, a
30-s search budget each, the full search against the same search with one lever removed:

- `no recipe`: the space without the searched `features` (quantile map) and `schedule` (cosine)
  keys, and the per-family starting points without them: every model trains as the reference
  study trained;
- `no family starts`: only the reference model as a fixed first trial;
- `no finalists`: the search's best trial retrained with the same seeds, no re-evaluation.

Figures: each variant's winner test RMSE over the full search's (> 1: the lever helped), with its
spread over seeds, and the same for the excess over each split's noise floor.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
from collections.abc import Iterator

import optuna

from benchmarks._common import Figure
from benchmarks.quality import poptune_search, seed_mlp
from poptune.data import prepare, synthetic_tracks
from poptune.data._synthetic import expected_popularity
from poptune.driver import tune_config
from poptune.metric import regression_scores
from poptune.spaces import define_space

ROWS, BUDGET, SEEDS = 26_300, 30.0, (0, 1, 2)
VARIANTS = ("full", "no recipe", "no family starts", "no finalists")


@contextlib.contextmanager
def _variant(name: str) -> Iterator[None]:
    """Take one lever out of the driver's search (the space and the first points live there)."""
    saved = tune_config.define_space, tune_config.starting_points
    original_points = tune_config.starting_points
    if name == "no recipe":
        tune_config.define_space = functools.partial(define_space, recipe=False)
        tune_config.starting_points = lambda n: [
            {k: v for k, v in p.items() if k not in ("features", "schedule")}
            for p in original_points(n)
        ]
    elif name == "no family starts":
        tune_config.starting_points = lambda n: original_points(n)[:1]
    try:
        yield
    finally:
        tune_config.define_space, tune_config.starting_points = saved


def run() -> list[Figure]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    frame = synthetic_tracks(ROWS, 0, difficulty="real")
    oracle = expected_popularity(ROWS, 0, difficulty="real")
    rmse: dict[str, list[float]] = {v: [] for v in VARIANTS}
    floors = []
    for seed in SEEDS:
        prepared = prepare(frame, seed=seed)
        floor = oracle.loc[prepared.test_ids].to_numpy()
        floors.append(regression_scores(prepared.y_test, floor)["rmse"])
        _, target = seed_mlp(prepared, seed)
        for name in VARIANTS:
            with _variant(name):
                k = None if name == "no finalists" else 3
                outcome = poptune_search(prepared, ROWS, seed, BUDGET, "tpe", target, finalists_k=k)
            rmse[name].append(outcome.rmse)
        print(
            f"  [seed {seed}] "
            + " · ".join(f"{v} {rmse[v][-1]:.3f}" for v in VARIANTS)
            + f" · noise floor {floors[-1]:.3f}",
            flush=True,
        )
    figures = []
    for name in VARIANTS[1:]:
        ratios = [a / b for a, b in zip(rmse[name], rmse["full"], strict=True)]
        excess = [
            (a - f) / (b - f) for a, b, f in zip(rmse[name], rmse["full"], floors, strict=True)
        ]
        figures.append(
            Figure(
                f"ablation: {name} / full search (winner test RMSE)",
                statistics.mean(ratios),
                "",
                f"≈20k tracks (real difficulty), {len(SEEDS)} seeds, {BUDGET:.0f}-s budget each; "
                f"ratios {', '.join(f'{r:.4f}' for r in ratios)}; excess over the noise floor, "
                f"variant / full: {', '.join(f'{e:.2f}' for e in excess)}; full "
                f"{', '.join(f'{r:.3f}' for r in rmse['full'])}, {name} "
                f"{', '.join(f'{r:.3f}' for r in rmse[name])}",
            )
        )
    return figures
