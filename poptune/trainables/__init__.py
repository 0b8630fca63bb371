"""Trainables: the four MLP families, the in-process training loop, and the Ray trainable."""

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
