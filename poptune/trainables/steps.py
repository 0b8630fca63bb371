"""The pieces of a training epoch that fit runs: the forward pass layer by layer, the rows a
quantile input map trains on, the optimizer steps, and the epoch's loss summed as the device
would sum it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from poptune.compat import torch_compat
from poptune.trainables.config import ModelConfig
from poptune.trainables.features import QuantileInput, fit_and_map
from poptune.trainables.lr_schedule import learning_rate

# Rows per forward pass outside training (validation, predict, the input map of the training
# rows). On the CPU, 4,096 rows of a 512-wide layer are 8 MB of activations, where the whole
# validation split in one pass held 80 MB for a moment (a trial worker's peak RSS). The same rows
# in the same chunks give the same bits on any CPU; against one pass they agree only to float32
# rounding, since a matmul's kernel (MKL's on AMD CPUs, for one) may depend on its row count.
# On a GPU the activations are device memory, and larger chunks cost nothing.
_EVAL_BATCH = 65_536
_CPU_EVAL_BATCH = 4_096


def eval_batch(device: torch.device) -> int:
    return _CPU_EVAL_BATCH if device.type == "cpu" else _EVAL_BATCH


def layer_by_layer(model: nn.Module, start: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's forward pass (from layer ``start`` on), calling each layer's `forward`.

    `nn.Module.__call__` checks for hooks and more on every call: ~3 µs a layer, 6% of a batch-64
    step of the reference model. The models `build_model` makes are plain `nn.Sequential`s and
    `fit` registers no hooks, so the result is the same; anything else (or a model that may have
    hooks, which only torch's private names tell: see compat.torch_compat) keeps the usual call.
    """
    plain = isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward
    if not plain or torch_compat.may_have_hooks(model):
        return model
    layers = [layer.forward for layer in list(model)[start:]]

    def forward(x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(x)
        return x

    return forward


def forward_and_rows(
    model: nn.Module, x_train: torch.Tensor, device: torch.device
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """The training forward pass, and the rows it trains on: with a quantile input map, its
    knots are fitted here on the training rows only (a resumed state holds the same knots). A
    plain model trains on the mapped rows (no map in every batch); a hooked one maps every
    batch in its own call."""
    forward = layer_by_layer(model)
    input_map = model[0] if isinstance(model, nn.Sequential) and len(model) else None
    if isinstance(input_map, QuantileInput):
        plain = forward is not model
        mapped = fit_and_map(input_map, x_train, eval_batch(device), map_rows=plain)
        if mapped is not None:
            return layer_by_layer(model, start=1), mapped
    return forward, x_train


def train_steps(
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    forward: Callable[[torch.Tensor], torch.Tensor],
    optimizer: Any,
    config: ModelConfig,
    total_steps: int,
    on_cpu: bool,
) -> tuple[list[float | torch.Tensor], list[int]]:
    """One epoch's optimizer steps; each batch's loss and size."""
    losses: list[float | torch.Tensor] = []
    sizes: list[int] = []
    for xb, yb in batches:
        loss = nn.functional.mse_loss(forward(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.lr = learning_rate(config.schedule, config.lr, optimizer.steps, total_steps)
        optimizer.step()
        # On the CPU, the step's loss as a number: a list of 0-dim tensors kept a tiny
        # allocation alive between each step's freed activations, and the heap fragmented
        # (+50-80 MB RSS within an epoch). On a GPU, reading it would wait for the device.
        losses.append(loss.item() if on_cpu else loss.detach())
        sizes.append(len(xb))
    return losses, sizes


def epoch_loss(losses: list[float] | list[torch.Tensor], sizes: list[int]) -> float:
    """Σ loss × batch size, summed in float32 in batch order: the same bits as a running sum
    kept on the device, without the two extra kernel calls per step that one costs."""
    if losses and isinstance(losses[0], torch.Tensor):
        values = torch.stack(losses).float().cpu().numpy()
    else:  # float32 losses read as Python floats: the same float32 values back, exactly
        values = np.asarray(losses, dtype=np.float32)
    weighted = values * np.asarray(sizes, dtype=np.float32)
    return float(np.add.accumulate(weighted)[-1])  # accumulate is sequential; np.sum is pairwise
