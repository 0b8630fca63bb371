"""The models and their training: what a trial, a retrain and `poptune predict` run.

- ``config``: ``ModelConfig``, one point of the search space, and the reference config;
- ``models``: the four MLP families; ``seed_ensemble``: a seed ensemble of one config;
- ``features``: the quantile input map; ``lr_schedule``: the learning rate per step;
  ``flat_adamw``: the optimizer;
- ``splits``: what ``fit`` reads; ``loop``: ``fit`` and ``predict``, in process, no Ray;
- ``trainable``: ``train_trial``, the Ray trainable;
- ``bundle``: the model bundle, written by the analysis and read by `poptune predict`.

The names below are the ones the rest of poptune trains and predicts with.
"""

from poptune.trainables.config import FAMILIES, REFERENCE, REFERENCE_EPOCHS, ModelConfig
from poptune.trainables.loop import EpochStats, FitResult, TargetScale, fit, predict
from poptune.trainables.models import build_model

__all__ = [
    "FAMILIES",
    "REFERENCE",
    "REFERENCE_EPOCHS",
    "EpochStats",
    "FitResult",
    "ModelConfig",
    "TargetScale",
    "build_model",
    "fit",
    "predict",
]
