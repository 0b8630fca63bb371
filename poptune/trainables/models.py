"""The four MLP families of the reference study, with widths and dropout taken from the config."""

from __future__ import annotations

from torch import nn

from poptune.data import FEATURES
from poptune.trainables.config import FAMILY_WIDTHS, ModelConfig
from poptune.trainables.features import QuantileInput

N_FEATURES = len(FEATURES)


def _relu_stack(
    config: ModelConfig, *, dropout: float = 0.0, batch_norm: bool = False
) -> list[nn.Module]:
    # The input map is a fixed first layer (no parameters); the family's own layers follow it.
    layers: list[nn.Module] = [QuantileInput(N_FEATURES)] if config.features == "quantile" else []
    widths = config.widths
    fan_in = N_FEATURES
    for i, width in enumerate(widths):
        layers.append(nn.Linear(fan_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        # The reference places dropout between hidden layers, not before the output layer.
        if dropout > 0 and i < len(widths) - 1:
            layers.append(nn.Dropout(dropout))
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    return layers


class MLP1Layer(nn.Sequential):
    """10 → width_1 → 1, ReLU."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(*_relu_stack(config))


class MLP2Layer(nn.Sequential):
    """10 → width_1 → width_2 → 1, ReLU."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(*_relu_stack(config))


class MLP3LayerDropout(nn.Sequential):
    """10 → width_1 → width_2 → width_3 → 1, ReLU, dropout between hidden layers."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(*_relu_stack(config, dropout=config.dropout or 0.0))


class MLP2LayerBatchNorm(nn.Sequential):
    """10 → width_1 → width_2 → 1, BatchNorm1d before each hidden ReLU."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(*_relu_stack(config, batch_norm=True))


MODELS: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (MLP1Layer, MLP2Layer, MLP3LayerDropout, MLP2LayerBatchNorm)
}
assert set(MODELS) == set(FAMILY_WIDTHS), "every family in FAMILY_WIDTHS needs a model class"


def build_model(config: ModelConfig | dict) -> nn.Module:
    """A fresh, randomly initialised model for ``config`` (a ModelConfig or its flat dict)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return MODELS[config.family](config)
