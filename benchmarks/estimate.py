"""estimate: `poptune estimate`'s prediction for a search, next to that search's wall time.

The search is poptune's default shape scaled to the benchmark's budget: 16 trials, TPE and ASHA
(up to 10 epochs, grace 2), 1 CPU per trial, the full-size built-in data. `estimate_search` runs
first (timing configs here, then a short calibration search), then the search itself runs
through `run_search`, as `poptune estimate` and `poptune search` would with the same options.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._common import SEED, Figure
from benchmarks.search import run_poptune_search, search_settings
from poptune.data import load_source, prepare
from poptune.estimate.forecast import estimate_search

MAX_EPOCHS = 10
GRACE_PERIOD = 2


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="poptune-bench-") as tmp:
        settings = search_settings(
            str(Path(tmp) / "runs"),
            scheduler="asha",
            max_epochs=MAX_EPOCHS,
            grace_period=GRACE_PERIOD,
        )
        prepared = prepare(load_source(settings.data), seed=SEED, dedupe=settings.dedupe)
        estimate = estimate_search(settings, prepared)
        search = run_poptune_search(settings, prepared)
    clock, wall = search.clock, search.wall_s
    epochs = sum(clock.epochs_per_trial().values())
    return [
        Figure(
            "estimate: predicted / measured search wall",
            estimate.wall_s / wall,
            "",
            f"predicted {estimate.wall_s:.1f} s: {estimate.trial_epochs:.1f} epochs (ASHA), "
            f"{estimate.mean_epoch_s:.2f} s each, {estimate.slots} slots, "
            f"{estimate.first_trial_s:.1f} s before the first epoch; measured {wall:.1f} s: "
            f"{epochs} epochs, {clock.busy_s / epochs:.2f} s each, "
            f"{search.first_epoch_start():.1f} s before the first epoch",
        ),
        Figure(
            "estimate: ASHA's predicted / measured epochs",
            estimate.trial_epochs / epochs,
            "",
            f"{estimate.trial_epochs:.1f} expected for {settings.num_samples} trials, "
            f"{MAX_EPOCHS} epochs, grace {GRACE_PERIOD}; {epochs} run (one search: ±10% is "
            "luck of the draw)",
        ),
    ]
