"""`fit` is a pure function of (config, data, seed): the same curve every time, resumed or not.

Rerun or resumed, `fit` replays the same computation: bit for bit, on any CPU. The speed work in
`fit` (a flat-buffer AdamW, batches as views, layers called directly, the loss summed once per
epoch) is a different computation of the same maths: it is compared with the plain loop it
replaced and with torch's own AdamW to the tolerances of tests/numerics.py.
Not timed; see benchmarks/ for speed.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from poptune.trainables import ModelConfig, build_model, fit
from poptune.trainables.flat_adamw import FlatAdamW
from tests.numerics import assert_curves_close, curve_rtol, weight_atol

CONFIGS = {
    "MLP1Layer": {"family": "MLP1Layer", "width_1": 17},
    "MLP2Layer": {"family": "MLP2Layer", "width_1": 40, "width_2": 9},
    "MLP3LayerDropout": {
        "family": "MLP3LayerDropout",
        "width_1": 37,
        "width_2": 13,
        "width_3": 5,
        "dropout": 0.3,
    },
    "MLP2LayerBatchNorm": {"family": "MLP2LayerBatchNorm", "width_1": 33, "width_2": 9},
}


def _config(
    family: str, *, batch_size: int = 50, weight_decay: float = 1e-3, **recipe: str
) -> ModelConfig:
    return ModelConfig.from_dict(
        {
            **CONFIGS[family],
            "lr": 3e-3,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            **recipe,
        }
    )


def _curve(history: list[dict]) -> list[dict]:
    """Everything an epoch reports except its wall time."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def _frozen(state) -> dict:
    """A deep copy through torch.save, as the Ray trainable writes a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("family", list(CONFIGS))
def test_same_seed_same_curve_and_weights(family, small_prepared):
    config = _config(family)
    first = fit(config, small_prepared, epochs=3, seed=11, threads=1)
    second = fit(config, small_prepared, epochs=3, seed=11, threads=1)
    assert _curve(first.history) == _curve(second.history)
    assert _same_weights(first.model, second.model)
    other = fit(config, small_prepared, epochs=3, seed=12, threads=1)
    assert _curve(other.history) != _curve(first.history)  # the seed does matter


def _plain_fit(config: ModelConfig, prepared, *, epochs: int, seed: int) -> list[dict]:
    """`fit` as first written, the obvious way: torch's AdamW, a slice per batch, the model
    called as a module, a running loss sum on the device. The fast `fit` must match it."""
    from poptune.metric import regression_scores
    from poptune.trainables import TargetScale, predict

    torch.manual_seed(seed)
    shuffle_rng = torch.Generator().manual_seed(seed)
    scale = TargetScale.fit(prepared.y_train)
    x_train = torch.from_numpy(prepared.x_train)
    y_train = torch.from_numpy((prepared.y_train - scale.mean) / scale.std).unsqueeze(1)
    model = build_model(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    n = len(x_train)
    n_used = n - 1 if n % config.batch_size == 1 else n
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=shuffle_rng)
        xs, ys = x_train[order], y_train[order]
        loss_sum = torch.zeros(())
        for start in range(0, n_used, config.batch_size):
            xb, yb = xs[start : start + config.batch_size], ys[start : start + config.batch_size]
            loss = nn.functional.mse_loss(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(xb)
        scores = regression_scores(prepared.y_val, predict(model, prepared.x_val, scale))
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(loss_sum) / n_used * scale.std**2,
                "val_mse": scores["mse"],
                "val_rmse": scores["rmse"],
                "val_mae": scores["mae"],
                "diverged": False,
            }
        )
    return history


@pytest.mark.parametrize("family", list(CONFIGS))
def test_fit_gives_the_plain_loops_curve(family, small_prepared):
    config = _config(family, batch_size=33)  # a short last batch too
    fast = fit(config, small_prepared, epochs=3, seed=4, threads=1)
    plain = _plain_fit(config, small_prepared, epochs=3, seed=4)
    assert_curves_close(_curve(fast.history), plain, rtol=curve_rtol(family))


@pytest.mark.parametrize("recipe", [{}, {"features": "quantile", "schedule": "cosine"}])
@pytest.mark.parametrize("family", list(CONFIGS))
def test_resuming_mid_training_gives_the_uninterrupted_curve(family, recipe, small_prepared):
    """A cosine schedule is a function of the optimizer's step count and the quantile map's
    knots travel in the model's state: a resumed run continues on the very same curve."""
    config = _config(family, **recipe)
    saved: dict[int, dict] = {}

    def keep_state(stats, state) -> None:
        saved[stats["epoch"]] = _frozen(state())

    whole = fit(config, small_prepared, epochs=4, seed=3, threads=1, on_epoch=keep_state)
    resumed = fit(config, small_prepared, epochs=4, seed=3, threads=1, resume_from=saved[2])
    assert _curve(resumed.history) == _curve(whole.history)
    assert _same_weights(whole.model, resumed.model)


def test_a_returned_model_owns_its_weights(small_prepared):
    """Bundles are saved with safetensors, which refuses tensors that share storage."""
    result = fit(_config("MLP2Layer"), small_prepared, epochs=1, seed=0, threads=1)
    pointers = [p.untyped_storage().data_ptr() for p in result.model.parameters()]
    assert len(set(pointers)) == len(pointers)


def _train(model: nn.Module, optimizer, steps: int, seed: int) -> list[torch.Tensor]:
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(24, 10, generator=data), torch.randn(24, 1, generator=data)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def _trained_with(cls, config: ModelConfig, *, steps: int) -> list[torch.Tensor]:
    torch.manual_seed(5)  # same initial weights and dropout masks for both optimizers
    model = build_model(config)
    optimizer = cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return _train(model, optimizer, steps=steps, seed=1)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("family", list(CONFIGS))
def test_flat_adamw_takes_torch_adamws_step(family, weight_decay):
    """One step from the same state: the same elementwise operations on the same numbers, so at
    most a fused multiply-add's rounding apart (a few float32 steps), whatever the family."""
    config = _config(family, weight_decay=weight_decay)
    flat = _trained_with(FlatAdamW, config, steps=1)
    plain = _trained_with(torch.optim.AdamW, config, steps=1)
    for ours, theirs in zip(flat, plain, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=2**-21, atol=1e-9)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("family", list(CONFIGS))
def test_flat_adamw_trains_as_torch_adamw(family, weight_decay):
    config = _config(family, weight_decay=weight_decay)
    flat = _trained_with(FlatAdamW, config, steps=40)
    plain = _trained_with(torch.optim.AdamW, config, steps=40)
    for ours, theirs in zip(flat, plain, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=weight_atol(family))


@pytest.mark.parametrize(("before", "after"), [("torch", "flat"), ("flat", "torch")])
def test_optimizer_state_moves_between_torch_and_flat_adamw(before, after):
    """Checkpoints written before FlatAdamW existed (torch's format) resume, and vice versa."""
    config = _config("MLP2Layer", weight_decay=1e-2)
    kinds = {"torch": torch.optim.AdamW, "flat": FlatAdamW}

    def optimizer(kind: str, model: nn.Module):
        return kinds[kind](model.parameters(), lr=config.lr, weight_decay=1e-2)

    torch.manual_seed(0)
    model = build_model(config)
    first = optimizer(before, model)
    _train(model, first, steps=5, seed=1)
    saved = _frozen({"model": model.state_dict(), "optimizer": first.state_dict()})
    uninterrupted = _train(model, first, steps=5, seed=2)

    model = build_model(config)
    model.load_state_dict(saved["model"])
    second = optimizer(after, model)
    second.load_state_dict(saved["optimizer"])
    for ours, theirs in zip(_train(model, second, steps=5, seed=2), uninterrupted, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=weight_atol(config.family))


def test_flat_adamw_state_dict_has_torch_adamws_layout():
    config = _config("MLP3LayerDropout", weight_decay=1e-2)
    dicts = []
    for cls in (torch.optim.AdamW, FlatAdamW):
        torch.manual_seed(0)
        model = build_model(config)
        optimizer = cls(model.parameters(), lr=config.lr, weight_decay=1e-2)
        empty = optimizer.state_dict()
        _train(model, optimizer, steps=3, seed=1)
        dicts.append((empty, optimizer.state_dict()))
    (torch_empty, torch_full), (flat_empty, flat_full) = dicts
    assert flat_empty == torch_empty
    assert flat_full["param_groups"] == torch_full["param_groups"]
    assert flat_full["state"].keys() == torch_full["state"].keys()
    for index, theirs in torch_full["state"].items():
        ours = flat_full["state"][index]
        assert ours.keys() == theirs.keys()
        for key in theirs:
            assert ours[key].dtype == theirs[key].dtype
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-9)


def test_flat_adamw_refuses_gradients_replaced_behind_its_back():
    model = build_model(_config("MLP1Layer"))
    optimizer = FlatAdamW(model.parameters(), lr=1e-3)
    model.zero_grad()  # set_to_none: the next backward would write outside the buffer
    nn.functional.mse_loss(model(torch.randn(4, 10)), torch.randn(4, 1)).backward()
    with pytest.raises(RuntimeError, match="zero_grad"):
        optimizer.step()
