"""The hyperparameters of one trial as a frozen object; the flat dict lives only at Tune's edge."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from poptune.errors import UsageError
from poptune.options import require_one_of

# Which width keys (and whether dropout) each family uses. The search space and the models both
# read this table, so adding a family means adding one row here and one class in models.py.
FAMILY_WIDTHS: dict[str, tuple[str, ...]] = {
    "MLP1Layer": ("width_1",),
    "MLP2Layer": ("width_1", "width_2"),
    "MLP3LayerDropout": ("width_1", "width_2", "width_3"),
    "MLP2LayerBatchNorm": ("width_1", "width_2"),
}
DROPOUT_FAMILIES = frozenset({"MLP3LayerDropout"})
FAMILIES: tuple[str, ...] = tuple(FAMILY_WIDTHS)
# How the inputs reach the first layer: as `prepare` scaled them (RobustScaler), or then mapped
# through their training quantiles onto a normal (poptune.trainables.features).
FEATURE_MAPS: tuple[str, ...] = ("robust", "quantile")
# The learning rate over a run: constant (the reference's), or a short warm-up then a cosine
# decay to zero over the run's epochs (poptune.trainables.lr_schedule).
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
# Keys every family has, whatever its widths and dropout.
COMMON_KEYS = ("family", "lr", "batch_size", "weight_decay", "features", "schedule")


@dataclass(frozen=True)
class ModelConfig:
    """One point of the search space; keys absent from a family stay ``None``."""

    family: str
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    width_1: int | None = None
    width_2: int | None = None
    width_3: int | None = None
    dropout: float | None = None
    features: str = "robust"
    schedule: str = "constant"

    def __post_init__(self) -> None:
        require_one_of("family", self.family, FAMILIES)
        for key in FAMILY_WIDTHS[self.family]:
            width = getattr(self, key)
            if not isinstance(width, int) or width < 1:
                raise UsageError(
                    f"{self.family} needs {key} as a positive integer, but got {width!r}"
                )
        if self.family in DROPOUT_FAMILIES and not (0.0 <= (self.dropout or 0.0) < 1.0):
            raise UsageError(f"dropout must be in [0, 1), but got {self.dropout!r}")
        if not self.lr > 0:
            raise UsageError(f"lr must be positive, but got {self.lr!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 2):
            raise UsageError(f"batch_size must be an integer >= 2, but got {self.batch_size!r}")
        if not self.weight_decay >= 0:
            raise UsageError(f"weight_decay must be >= 0, but got {self.weight_decay!r}")
        require_one_of("features", self.features, FEATURE_MAPS)
        require_one_of("schedule", self.schedule, SCHEDULES)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(getattr(self, key) for key in FAMILY_WIDTHS[self.family])

    def to_dict(self) -> dict[str, Any]:
        """The flat dict of the keys this family uses (docs/design.md, "Config keys")."""
        used = _used_keys(self.family)
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in used}

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise UsageError(
                f"unknown config key(s) {', '.join(unknown)}; "
                f"known keys: {', '.join(sorted(known))}"
            )
        family = config.get("family")
        require_one_of("family", family, FAMILIES)
        used = _used_keys(family)
        # A width the family does not have is not part of its config (a flat table of trials
        # carries every key for every row).
        values = {k: v for k, v in config.items() if k in used}
        # Values read back from JSON, YAML or a DataFrame arrive as floats or numpy scalars.
        for key in (*FAMILY_WIDTHS[family], "batch_size"):
            if values.get(key) is not None and float(values[key]).is_integer():
                values[key] = int(values[key])
        for key in ("lr", "weight_decay", "dropout"):
            if values.get(key) is not None:
                values[key] = float(values[key])
        return cls(**values)


def _used_keys(family: str) -> set[str]:
    used = {*COMMON_KEYS, *FAMILY_WIDTHS[family]}
    if family in DROPOUT_FAMILIES:
        used.add("dropout")
    return used


# The reference study's best model, trained 10 epochs: the `seed_mlp` baseline, and the first
# point every search evaluates so that the search can only improve on it.
REFERENCE = ModelConfig(
    family="MLP3LayerDropout",
    width_1=128,
    width_2=64,
    width_3=32,
    dropout=0.2,
    lr=0.001,
    batch_size=64,
    weight_decay=0.0,
)
REFERENCE_EPOCHS = 10
