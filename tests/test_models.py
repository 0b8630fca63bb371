"""One contract every family keeps: adding a family means adding it to FAMILIES, nothing here.

Shape, a finite loss, a training step that lowers the loss, a config that round-trips, and the
architecture really built from the config (widths, dropout, batch norm).
"""

from __future__ import annotations

import json
from math import nan

import pytest
import torch
from torch import nn

from poptune.data import FEATURES
from poptune.errors import UsageError
from poptune.trainables import FAMILIES, REFERENCE, ModelConfig, build_model
from poptune.trainables.config import DROPOUT_FAMILIES, FAMILY_WIDTHS

# Odd, distinct widths so that a layer built from the wrong key cannot pass by coincidence.
ODD_WIDTHS = {"width_1": 37, "width_2": 19, "width_3": 7}


def config_for(family: str, **overrides: object) -> ModelConfig:
    values: dict = {"family": family, "lr": 1e-3, "batch_size": 64, "weight_decay": 0.0}
    values.update({key: ODD_WIDTHS[key] for key in FAMILY_WIDTHS[family]})
    if family in DROPOUT_FAMILIES:
        values["dropout"] = 0.35
    return ModelConfig(**{**values, **overrides})


def batch(rows: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, len(FEATURES), generator=g)
    return x, (x[:, :3].sum(dim=1, keepdim=True) + 0.1 * torch.randn(rows, 1, generator=g))


def loss_with_mask_seed(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(123)  # the same dropout mask before and after the step
    return nn.functional.mse_loss(model(x), y)


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


def test_output_is_one_prediction_per_row_and_finite(family):
    torch.manual_seed(0)
    model = build_model(config_for(family))
    for rows in (2, 7, 64):
        x, y = batch(rows)
        out = model.train()(x)
        assert out.shape == (rows, 1) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        assert torch.isfinite(nn.functional.mse_loss(out, y))
    with torch.inference_mode():
        assert model.eval()(batch(1)[0]).shape == (1, 1)  # eval works on a single row


def test_one_step_lowers_the_loss_on_a_fixed_batch_and_reaches_every_parameter(family):
    torch.manual_seed(1)
    model = build_model(config_for(family)).train()
    x, y = batch(128)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = loss_with_mask_seed(model, x, y)
    optimizer.zero_grad()
    before.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient: {name}"
    optimizer.step()
    after = loss_with_mask_seed(model, x, y)
    assert after.item() < before.item()


def test_config_round_trips_through_dict_and_json(family):
    config = config_for(family)
    assert ModelConfig.from_dict(config.to_dict()) == config
    # JSON, YAML and DataFrames hand back widths as floats; they must come back as ints.
    text = json.dumps(
        {k: float(v) if isinstance(v, int) else v for k, v in config.to_dict().items()}
    )
    again = ModelConfig.from_dict(json.loads(text))
    assert again == config and all(isinstance(w, int) for w in again.widths)
    assert (
        build_model(config.to_dict()).state_dict().keys() == build_model(config).state_dict().keys()
    )


def test_to_dict_holds_only_the_keys_this_family_has(family):
    keys = set(config_for(family).to_dict())
    expected = {"family", "lr", "batch_size", "weight_decay", "features", "schedule"}
    expected |= set(FAMILY_WIDTHS[family])
    if family in DROPOUT_FAMILIES:
        expected.add("dropout")
    assert keys == expected
    # A flat table of trials carries every key for every row (NaN where a family has none);
    # the keys this family does not have are ignored.
    flat = {"width_1": nan, "width_2": nan, "width_3": nan, "dropout": nan}
    flat.update(config_for(family).to_dict())
    assert ModelConfig.from_dict(flat) == config_for(family)


def test_widths_dropout_and_batch_norm_come_from_the_config(family):
    config = config_for(family)
    model = build_model(config)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [*config.widths, 1]
    assert [m.in_features for m in linears] == [len(FEATURES), *config.widths]
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if family in DROPOUT_FAMILIES:
        # Between hidden layers, not before the output: one fewer than the hidden layers.
        assert [m.p for m in dropouts] == [0.35] * (len(config.widths) - 1)
    else:
        assert dropouts == []
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    if "BatchNorm" in family:
        assert [m.num_features for m in norms] == list(config.widths)
    else:
        assert norms == []
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == len(config.widths)


def test_other_widths_give_another_model(family):
    wider = config_for(family, **{key: 2 * ODD_WIDTHS[key] for key in FAMILY_WIDTHS[family]})
    count = sum(p.numel() for p in build_model(wider).parameters())
    assert count > sum(p.numel() for p in build_model(config_for(family)).parameters())


def test_the_reference_model_is_the_notebooks():
    """MLP3LayerDropout 10→128→64→32→1 with dropout 0.2: 11,777 weights and biases."""
    model = build_model(REFERENCE)
    assert sum(p.numel() for p in model.parameters()) == 10 * 128 + 128 + 128 * 64 + 64 + (
        64 * 32 + 32
    ) + (32 + 1)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.2, 0.2]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"family": "MLP9Layer"}, "family must be one of MLP1Layer, MLP2Layer"),
        ({"family": "MLP2Layer", "width_1": 32}, "MLP2Layer needs width_2 as a positive integer"),
        ({"family": "MLP1Layer", "width_1": 0}, "needs width_1 as a positive integer, but got 0"),
        (
            {"family": "MLP3LayerDropout", "width_1": 8, "width_2": 8, "width_3": 8, "dropout": 1},
            "dropout must be in [0, 1), but got 1",
        ),
        ({"family": "MLP1Layer", "width_1": 8, "lr": 0}, "lr must be positive, but got 0"),
        ({"family": "MLP1Layer", "width_1": 8, "batch_size": 1}, "batch_size must be an integer"),
        ({"family": "MLP1Layer", "width_1": 8, "colour": 1}, "unknown config key(s) colour"),
    ],
)
def test_bad_configs_say_what_is_wrong(values, message):
    with pytest.raises(UsageError) as info:
        ModelConfig.from_dict({"lr": 1e-3, "batch_size": 64, **values})
    assert message in str(info.value)
