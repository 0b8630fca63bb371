"""`fit`: train one model in-process, no Ray. The Ray trainable and the analysis retrain call it.

Speed matters because a search multiplies this loop by hundreds of trials: the whole training
split lives in one tensor, each epoch does one shuffled gather and then slices contiguous batches
(no per-item Dataset/DataLoader, no Python work per sample), and evaluation runs in large batches
under `torch.inference_mode`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from poptune.compat import torch_private
from poptune.metric import regression_scores
from poptune.trainables.config import ModelConfig
from poptune.trainables.features import QuantileInput, fit_and_map
from poptune.trainables.flat_adamw import adamw
from poptune.trainables.models import build_model
from poptune.trainables.schedule import learning_rate
from poptune.trainables.splits import Splits

# Rows per forward pass outside training (validation, predict, the input map of the training
# rows). On the CPU, 4,096 rows of a 512-wide layer are 8 MB of activations, where the whole
# validation split in one pass held 80 MB for a moment (a trial worker's peak RSS). The same rows
# in the same chunks give the same bits on any CPU; against one pass they agree only to float32
# rounding, since a matmul's kernel (MKL's on AMD CPUs, for one) may depend on its row count.
# On a GPU the activations are device memory, and larger chunks cost nothing.
_EVAL_BATCH = 65_536
_CPU_EVAL_BATCH = 4_096


class EpochStats(TypedDict):
    """One epoch's numbers, in popularity points (a dict so Tune and JSON take it as it is)."""

    epoch: int
    train_loss: float
    val_mse: float
    val_rmse: float
    val_mae: float
    seconds: float
    diverged: bool


@dataclass(frozen=True)
class TargetScale:
    """Models learn standardised popularity, so every lr and batch size starts on equal terms."""

    mean: float
    std: float

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScale:
        std = float(np.std(y))
        return cls(mean=float(np.mean(y)), std=std if std > 0 else 1.0)


@dataclass(frozen=True, eq=False)
class FitResult:
    model: nn.Module
    history: list[EpochStats]
    best_epoch: int
    target_scale: TargetScale

    @property
    def best(self) -> EpochStats:
        return self.history[self.best_epoch - 1]


TrainingState = dict[str, Any]
EpochCallback = Callable[[EpochStats, Callable[[], TrainingState]], None]


def fit(
    config: ModelConfig | dict,
    prepared: Splits,
    *,
    epochs: int,
    seed: int,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    on_epoch: EpochCallback | None = None,
    resume_from: TrainingState | None = None,
    keep_best: bool = False,
    patience: int | None = None,
) -> FitResult:
    """Train ``config`` on ``prepared`` for ``epochs`` epochs and keep its per-epoch history.

    ``on_epoch(stats, state)`` runs after every epoch; ``state()`` returns everything needed to
    continue later (pass it back as ``resume_from``), built only if the callback asks for it.
    Training stops early, marking the epoch ``diverged``, if the loss stops being finite.
    The returned model has the weights of the last epoch, or with ``keep_best`` those of the
    epoch with the lowest validation error (early stopping, judged on validation rows only).
    With ``patience``, training ends once that many epochs in a row brought no new best.
    """
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, but got {epochs}")
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device)
    on_cpu = device.type == "cpu"
    torch.manual_seed(seed)
    shuffle_rng = torch.Generator().manual_seed(seed)

    scale = TargetScale.fit(prepared.y_train)
    x_train = torch.from_numpy(prepared.x_train).to(device)
    y_train = torch.from_numpy((prepared.y_train - scale.mean) / scale.std).to(device).unsqueeze(1)
    x_val = torch.from_numpy(prepared.x_val).to(device)

    model = build_model(config).to(device)
    # torch.optim.AdamW's arithmetic in a few kernel calls instead of ~10 per tensor (FlatAdamW;
    # torch's own AdamW on a torch it was not checked against).
    optimizer = adamw(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[EpochStats] = []
    if resume_from is not None:
        model.load_state_dict(resume_from["model"])
        optimizer.load_state_dict(resume_from["optimizer"])
        shuffle_rng.set_state(resume_from["shuffle_rng"])
        torch.set_rng_state(resume_from["torch_rng"])
        history = list(resume_from["history"])

    def state() -> TrainingState:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle_rng": shuffle_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": list(history),
        }

    forward = _layer_by_layer(model)
    input_map = model[0] if isinstance(model, nn.Sequential) and len(model) else None
    if isinstance(input_map, QuantileInput):
        # Training rows only; a resumed state holds the same knots. A plain model trains on the
        # mapped rows (no map in every batch); a hooked one maps every batch in its own call.
        plain = forward is not model
        mapped = fit_and_map(input_map, x_train, _eval_batch(device), map_rows=plain)
        if mapped is not None:
            x_train = mapped
            forward = _layer_by_layer(model, start=1)
    n = len(x_train)
    # BatchNorm cannot train on a batch of one row, so a trailing batch that small is skipped.
    n_used = n - 1 if n % config.batch_size == 1 else n
    total_steps = epochs * -(-n_used // config.batch_size)
    best_state = None
    for epoch in range(len(history) + 1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=shuffle_rng).to(device)
        # One gather per epoch, then every batch is a view: no per-step indexing or copies.
        batches = zip(
            x_train[order][:n_used].split(config.batch_size),
            y_train[order][:n_used].split(config.batch_size),
            strict=True,
        )
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
        train_loss = _epoch_loss(losses, sizes) / n_used * scale.std**2  # in popularity points²
        diverged = not math.isfinite(train_loss)
        scores = _validation_scores(model, x_val, prepared.y_val, scale, diverged)
        history.append(
            EpochStats(
                epoch=epoch,
                train_loss=train_loss if not diverged else float("nan"),
                val_mse=scores["mse"],
                val_rmse=scores["rmse"],
                val_mae=scores["mae"],
                seconds=time.perf_counter() - started,
                diverged=diverged,
            )
        )
        earlier = [h["val_mse"] for h in history[:-1]]
        if keep_best and not diverged and (not earlier or scores["mse"] < min(earlier)):
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(history[-1], state)
        if diverged or (patience and _epochs_since_best(history) >= patience):
            break

    optimizer.release()  # the model leaves with its own storage, not views of the optimizer's
    best = min(history, key=lambda h: h["val_mse"])
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(model=model, history=history, best_epoch=best["epoch"], target_scale=scale)


def _epochs_since_best(history: list[EpochStats]) -> int:
    best = min(history, key=lambda h: h["val_mse"])
    return history[-1]["epoch"] - best["epoch"]


def predict(model: nn.Module, x: np.ndarray | torch.Tensor, scale: TargetScale) -> np.ndarray:
    """Popularity predictions (unclipped) for scaled features, in large batches."""
    device = next(model.parameters()).device
    x = torch.as_tensor(x, device=device)
    model.eval()
    with torch.inference_mode():
        step = _eval_batch(device)
        out = torch.cat([model(x[i : i + step]) for i in range(0, len(x), step)])
    return out.squeeze(1).double().cpu().numpy() * scale.std + scale.mean


def _eval_batch(device: torch.device) -> int:
    return _CPU_EVAL_BATCH if device.type == "cpu" else _EVAL_BATCH


def _layer_by_layer(model: nn.Module, start: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's forward pass (from layer ``start`` on), calling each layer's `forward`.

    `nn.Module.__call__` checks for hooks and more on every call: ~3 µs a layer, 6% of a batch-64
    step of the reference model. The models `build_model` makes are plain `nn.Sequential`s and
    `fit` registers no hooks, so the result is the same; anything else (or a model that may have
    hooks, which only torch's private names tell: see compat.torch_private) keeps the usual call.
    """
    plain = isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward
    if not plain or torch_private.may_have_hooks(model):
        return model
    layers = [layer.forward for layer in list(model)[start:]]

    def forward(x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(x)
        return x

    return forward


def _epoch_loss(losses: list[float] | list[torch.Tensor], sizes: list[int]) -> float:
    """Σ loss × batch size, summed in float32 in batch order: the same bits as a running sum
    kept on the device, without the two extra kernel calls per step that one costs."""
    if losses and isinstance(losses[0], torch.Tensor):
        values = torch.stack(losses).float().cpu().numpy()
    else:  # float32 losses read as Python floats: the same float32 values back, exactly
        values = np.asarray(losses, dtype=np.float32)
    weighted = values * np.asarray(sizes, dtype=np.float32)
    return float(np.add.accumulate(weighted)[-1])  # accumulate is sequential; np.sum is pairwise


def _validation_scores(
    model: nn.Module, x_val: torch.Tensor, y_val: np.ndarray, scale: TargetScale, diverged: bool
) -> dict[str, float]:
    if diverged:
        # A diverged model is scored as if it predicted the training mean: a finite, honest
        # "no better than nothing" that TPE can learn from, where a NaN would poison the study.
        return regression_scores(y_val, np.full(len(y_val), scale.mean))
    pred = predict(model, x_val, scale)
    if not np.isfinite(pred).all():
        return regression_scores(y_val, np.full(len(y_val), scale.mean))
    return regression_scores(y_val, pred)
