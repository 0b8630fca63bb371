"""The final model: the winner trained once more with the same seeds, its learning rate decaying
on a cosine to zero where its retrains peaked, the last epoch's weights kept, the seeds'
predictions averaged.

The finalists' retrains each train for the search's horizon and keep their best validation
epoch: the weights of a run cut off while its rate was still high (a ``cosine`` schedule not yet
decayed, or a ``constant`` one that never decays). Trained again so that the rate reaches zero
where training stops, the same seeds end lower. Measured on the built-in data at real
difficulty (≈20k tracks, 3 splits, 3-seed ensembles, excess test RMSE over the noise floor):

- a ``cosine`` winner, its horizon set to its retrains' mean best epoch: 0.132 against 0.137
  (best epoch of 10 kept) and 0.132 against 0.156 (of 16); 1.5× that epoch was worse (0.142);
- a ``constant`` winner (three configs: MLP2Layer at lr 1e-3 and 5e-4, MLP1Layer at 3e-3), a
  cosine decay over 1.5× its mean best epoch: 0.142, 0.140, 0.144 against 0.157, 0.159, 0.153
  kept; over 1.0× 0.151, 0.142, 0.157; over 2.0× 0.145, 0.141, 0.141.

Refitting on train + validation on top added nothing (0.135 against 0.132). A constant winner's
final model therefore has the winner's config with ``schedule: cosine``: its bundle and report
say so. The horizon comes from the validation split only (the retrains' best epochs); the test
split plays no part. `python -m benchmarks quality` reports the final model against the
retrains' own ensemble for each search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from poptune.analysis.retrain import Retrained, retrain_many
from poptune.data import Prepared
from poptune.trainables import ModelConfig

# How far past its retrains' mean best epoch a winner's final model decays, by the winner's
# schedule (measured, see above): a cosine winner peaked with its rate already falling.
STRETCH = {"cosine": 1.0, "constant": 1.5}
FINAL_SCHEDULE = "cosine"


def final_config(winner: Retrained) -> ModelConfig:
    """The config the final model trains with: the winner's, with the cosine schedule."""
    return replace(winner.config, schedule=FINAL_SCHEDULE)


def annealed_horizon(winner: Retrained) -> int:
    """The epochs the final model trains for."""
    mean_best = sum(winner.best_epochs) / len(winner.best_epochs)
    return max(1, round(mean_best * STRETCH[winner.config.schedule]))


def final_model(
    winner: Retrained,
    prepared: Prepared,
    *,
    base_seed: int,
    workers: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Retrained:
    """The winner's final model, trained with the seeds its retrains had (see the module's
    docstring)."""
    horizon = annealed_horizon(winner)
    log(
        f"training the final model: {len(winner.seeds)} seed(s), the learning rate decaying to "
        f"zero at epoch {horizon} (its retrains' best epochs: "
        f"{', '.join(str(e) for e in winner.best_epochs)})…"
    )
    (final,) = retrain_many(
        [final_config(winner)],
        prepared,
        epochs=horizon,
        seeds=len(winner.seeds),
        base_seed=base_seed,
        workers=workers,
        keep_best=False,
    )
    return final


def describe(final: Retrained, winner: Retrained) -> str:
    """What the final model is, in a phrase for metrics.json, the report and the bundle."""
    members = len(final.seeds)
    schedule = (
        "its cosine schedule ending"
        if winner.config.schedule == FINAL_SCHEDULE
        else f"its {winner.config.schedule} rate replaced by a cosine decay to zero"
    )
    trained = (
        f"the winner trained with {members} seed(s) for {final.epochs} epoch(s), {schedule} at "
        f"{STRETCH[winner.config.schedule]:g}× its retrains' mean best epoch "
        f"({', '.join(str(e) for e in winner.best_epochs)}), the last epoch's weights"
    )
    if members > 1:
        return f"seed ensemble: {trained}, predictions averaged; the bundled model"
    return f"{trained}; the bundled model"
