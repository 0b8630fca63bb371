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

from poptune.metric import regression_scores
from poptune.trainables.config import ModelConfig
from poptune.trainables.flat_adamw import adamw
from poptune.trainables.models import build_model
from poptune.trainables.splits import Splits
from poptune.trainables.steps import epoch_loss, eval_batch, forward_and_rows, train_steps


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
    torch.manual_seed(seed)
    one_epoch, history = _start(config, prepared, seed, epochs, torch.device(device), resume_from)
    model, optimizer = one_epoch.model, one_epoch.optimizer

    def state() -> TrainingState:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shuffle_rng": one_epoch.shuffle_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": list(history),
        }

    best_state = None
    for epoch in range(len(history) + 1, epochs + 1):
        history.append(one_epoch(epoch))
        stats = history[-1]
        earlier = [h["val_mse"] for h in history[:-1]]
        if keep_best and not stats["diverged"] and (not earlier or stats["val_mse"] < min(earlier)):
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(stats, state)
        if stats["diverged"] or (patience and _epochs_since_best(history) >= patience):
            break

    optimizer.release()  # the model leaves with its own storage, not views of the optimizer's
    best = min(history, key=lambda h: h["val_mse"])
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(
        model=model, history=history, best_epoch=best["epoch"], target_scale=one_epoch.scale
    )


def _start(
    config: ModelConfig,
    prepared: Splits,
    seed: int,
    epochs: int,
    device: torch.device,
    resume_from: TrainingState | None,
) -> tuple[_Epoch, list[EpochStats]]:
    """The model (seeded by the caller's torch.manual_seed), its optimizer and the tensors on
    ``device``, put back to ``resume_from`` if given; with the history so far."""
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
        history = _restore(resume_from, model, optimizer, shuffle_rng)
    forward, x_train = forward_and_rows(model, x_train, device)
    one_epoch = _Epoch(model, forward, optimizer, config, x_train, y_train, x_val, prepared.y_val,
                       scale, shuffle_rng, epochs, on_cpu=device.type == "cpu")  # fmt: skip
    return one_epoch, history


class _Epoch:
    """One epoch: a shuffled pass over the training rows, then the validation scores. Holds what
    stays the same from epoch to epoch, so that `fit` reads as the loop around it."""

    def __init__(
        self,
        model: nn.Module,
        forward: Callable[[torch.Tensor], torch.Tensor],
        optimizer: Any,
        config: ModelConfig,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: np.ndarray,
        scale: TargetScale,
        shuffle_rng: torch.Generator,
        epochs: int,
        on_cpu: bool,
    ) -> None:
        self.model, self.forward, self.optimizer, self.config = model, forward, optimizer, config
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val
        self.scale, self.shuffle_rng, self.on_cpu = scale, shuffle_rng, on_cpu
        n = len(x_train)
        # BatchNorm cannot train on a batch of one row, so a trailing batch that small is skipped.
        self.n_used = n - 1 if n % config.batch_size == 1 else n
        self.total_steps = epochs * -(-self.n_used // config.batch_size)

    def __call__(self, epoch: int) -> EpochStats:
        started = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.x_train), generator=self.shuffle_rng)
        order = order.to(self.x_train.device)
        # One gather per epoch, then every batch is a view: no per-step indexing or copies.
        size, used = self.config.batch_size, self.n_used
        batches = zip(
            self.x_train[order][:used].split(size),
            self.y_train[order][:used].split(size),
            strict=True,
        )
        steps = train_steps(
            batches, self.forward, self.optimizer, self.config, self.total_steps, self.on_cpu
        )
        train_loss = epoch_loss(*steps) / used * self.scale.std**2  # in popularity points²
        diverged = not math.isfinite(train_loss)
        scores = _validation_scores(self.model, self.x_val, self.y_val, self.scale, diverged)
        return EpochStats(
            epoch=epoch,
            train_loss=train_loss if not diverged else float("nan"),
            val_mse=scores["mse"],
            val_rmse=scores["rmse"],
            val_mae=scores["mae"],
            seconds=time.perf_counter() - started,
            diverged=diverged,
        )


def _restore(
    resume_from: TrainingState, model: nn.Module, optimizer: Any, shuffle_rng: torch.Generator
) -> list[EpochStats]:
    """Put a saved state back (weights, optimizer, both random streams); its history."""
    model.load_state_dict(resume_from["model"])
    optimizer.load_state_dict(resume_from["optimizer"])
    shuffle_rng.set_state(resume_from["shuffle_rng"])
    torch.set_rng_state(resume_from["torch_rng"])
    return list(resume_from["history"])


def _epochs_since_best(history: list[EpochStats]) -> int:
    return history[-1]["epoch"] - min(history, key=lambda h: h["val_mse"])["epoch"]


def predict(model: nn.Module, x: np.ndarray | torch.Tensor, scale: TargetScale) -> np.ndarray:
    """Popularity predictions (unclipped) for scaled features, in large batches."""
    device = next(model.parameters()).device
    x = torch.as_tensor(x, device=device)
    model.eval()
    with torch.inference_mode():
        step = eval_batch(device)
        out = torch.cat([model(x[i : i + step]) for i in range(0, len(x), step)])
    return out.squeeze(1).double().cpu().numpy() * scale.std + scale.mean


def _validation_scores(
    model: nn.Module, x_val: torch.Tensor, y_val: np.ndarray, scale: TargetScale, diverged: bool
) -> dict[str, float]:
    pred = None if diverged else predict(model, x_val, scale)
    if pred is None or not np.isfinite(pred).all():
        # A diverged model is scored as if it predicted the training mean: a finite, honest
        # "no better than nothing" that TPE can learn from, where a NaN would poison the study.
        pred = np.full(len(y_val), scale.mean)
    return regression_scores(y_val, pred)
