"""budget: what a larger time budget buys. A user who gives poptune six times the time should get
a better final model, not only more short trials.

On the quality benchmark's small size (≈20k tracks at the real difficulty, the same splits and
seeds), poptune's search with the quality benchmark's budget and with six times it, each followed
by the finalists step; reported: the final model's excess RMSE over the noise floor at 6× over
that at 1× (target ≤ 0.85), with the trials run, the epochs a trial reached, and the walls.

`python -m benchmarks.budget [--seeds 0 1 2] [--record]` runs it alone (about 15 minutes on 2
cores).
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks._common import Figure, run_standalone
from benchmarks.quality import MAX_EPOCHS, SEEDS, SIZES, _spread, poptune_search
from poptune.data import prepare, synthetic_tracks
from poptune.data._synthetic import expected_popularity
from poptune.metric import regression_scores

FACTOR = 6


def run(seeds: tuple[int, ...] = SEEDS) -> list[Figure]:
    label, rows, budget = SIZES[0]
    frame = synthetic_tracks(rows, 0, difficulty="real")
    oracle = expected_popularity(rows, 0, difficulty="real")
    excess: dict[int, list[float]] = {1: [], FACTOR: []}
    detail: dict[int, list[str]] = {1: [], FACTOR: []}
    for seed in seeds:
        prepared = prepare(frame, seed=seed)
        floor = regression_scores(prepared.y_test, oracle.loc[prepared.test_ids].to_numpy())
        for factor in (1, FACTOR):
            # target 0: the time-to-target clock is not wanted here
            out = poptune_search(prepared, rows, seed, budget * factor, "tpe", 0.0)
            excess[factor].append(out.extra["final_rmse"] - floor["rmse"])
            detail[factor].append(
                f"{out.extra['trials']:.0f} trials, median "
                f"{statistics.median(out.trial_epochs):.0f} epochs a trial, final model's best "
                f"epochs {', '.join(map(str, out.best_epochs))} of {MAX_EPOCHS}, wall "
                f"{out.wall_s:.0f} s"
            )
            print(
                f"  [{label} seed {seed}, {factor}× budget] final excess {excess[factor][-1]:.3f} "
                f"({detail[factor][-1]})",
                flush=True,
            )
    ratios = [b / a for a, b in zip(excess[1], excess[FACTOR], strict=True)]
    return [
        Figure(
            f"budget {label}: final excess at {FACTOR}× budget / at 1×",
            statistics.mean(excess[FACTOR]) / statistics.mean(excess[1]),
            "<= 0.85",
            f"mean excess over mean excess; search budget {budget:.0f} s and "
            f"{budget * FACTOR:.0f} s, each + finalists, {len(seeds)} seeds; per-seed ratios "
            f"{_spread(ratios)}; excess at 1× {_spread(excess[1])} ({'; '.join(detail[1])}), "
            f"at {FACTOR}× {_spread(excess[FACTOR])} ({'; '.join(detail[FACTOR])})",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.budget",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    return run_standalone("budget", lambda: run(tuple(args.seeds)), record=args.record)


if __name__ == "__main__":
    raise SystemExit(main())
