"""growth: the epoch time of `fit` at 10× the rows (232,725 vs 2,327,250).

The 10× data are the full-size arrays tiled ten times (training and validation rows alike): the
epoch's cost depends on how many rows there are, not on their values, and generating 2.3 million
synthetic tracks would take a minute of the benchmark's budget for nothing. The reference model
at batch 64, one torch thread, one epoch each; validation included. (A trial worker's peak memory
on the full-size data is measured by the search benchmark, which has the workers.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from benchmarks._common import Figure, full_prepared, paired, timed
from poptune.data import Prepared
from poptune.trainables import REFERENCE, TargetScale, build_model, fit, predict

FACTOR = 10


def tiled(prepared: Prepared, factor: int) -> Prepared:
    return dataclasses.replace(
        prepared,
        x_train=np.tile(prepared.x_train, (factor, 1)),
        y_train=np.tile(prepared.y_train, factor),
        x_val=np.tile(prepared.x_val, (factor, 1)),
        y_val=np.tile(prepared.y_val, factor),
    )


def epoch(prepared: Prepared) -> None:
    fit(REFERENCE, prepared, epochs=1, seed=0, threads=1)


def per_epoch_parts(prepared: Prepared) -> tuple[float, float]:
    """Seconds of the two per-epoch passes over all rows that are not batch steps: the shuffle
    gather of the training rows, and the validation forward pass."""
    torch.set_num_threads(1)
    x = torch.from_numpy(prepared.x_train)
    gather = min(timed(lambda: x[torch.randperm(len(x))]) for _ in range(3))
    model = build_model(REFERENCE)
    scale = TargetScale(mean=0.0, std=1.0)
    validate = min(timed(lambda: predict(model, prepared.x_val, scale)) for _ in range(3))
    return gather, validate


def run() -> list[Figure]:
    small = full_prepared("none")
    large = tiled(small, FACTOR)
    epoch(small)  # warm-up
    runs = paired(lambda: epoch(large), lambda: epoch(small), 3)
    small_s, large_s = min(t.wall for t in runs.b), min(t.wall for t in runs.a)
    (gather_1, val_1), (gather_10, val_10) = per_epoch_parts(small), per_epoch_parts(large)
    return [
        Figure(
            f"growth: epoch time at {FACTOR}× the rows / at full size",
            runs.ratio,
            f"<= {FACTOR + 0.5}",
            f"{len(small.x_train):,} training rows: {small_s:.2f} s; {len(large.x_train):,}: "
            f"{large_s:.2f} s (reference model, batch 64, 1 thread, validation included); best "
            f"of 3, run in turn (ratio of each pair: {runs.pair_ratios()}; in CPU time "
            f"{runs.cpu_ratio:.2f}). What grows faster than the rows: the shuffle gather "
            f"{gather_1 * 1e3:.0f} → {gather_10 * 1e3:.0f} ms and the validation pass "
            f"{val_1 * 1e3:.0f} → {val_10 * 1e3:.0f} ms (their data leave the CPU caches); the "
            "batch steps themselves cost the same per row",
        )
    ]
