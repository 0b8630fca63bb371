"""train: one epoch of `fit` vs. the obvious per-item Dataset/DataLoader loop, side by side.

Both train the reference model (MLP3LayerDropout 128-64-32, dropout 0.2, lr 1e-3, batch 64) for
one epoch on the 186,181 training rows of the full-size data and then score the validation
split; both timings cover the whole call (model, loaders, training, validation). One torch
thread each: what a 1-CPU trial gets, and on a shared machine the only setting whose timing is
not at the mercy of the neighbours (a second thread that has to wait for a busy core stalls the
whole matmul).

Then the large-batch epoch (batch 2048) against the compute-bound limit: the FLOPs of its
forward and backward passes over the matmul throughput this machine measures, both at its best
(large square matrices) and at the model's own matrix shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from benchmarks._common import Figure, full_prepared, measure, paired, timed
from poptune.data import Prepared
from poptune.trainables import REFERENCE, ModelConfig, build_model, fit

LARGE_BATCH = 2048


class TrackDataset(Dataset):
    """Per-item access, as the reference notebook wrote it."""

    def __init__(self, x, y) -> None:
        self.x = torch.tensor(x, dtype=torch.float32)
        self.y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


def reference_epoch(prepared: Prepared, seed: int = 0) -> None:
    """The reference notebook's loop: DataLoader(shuffle=True), Adam, loss.item() per step."""
    torch.manual_seed(seed)

    def run() -> None:
        model = build_model(REFERENCE)
        optimizer = torch.optim.Adam(model.parameters(), lr=REFERENCE.lr)
        criterion = nn.MSELoss()
        train = DataLoader(
            TrackDataset(prepared.x_train, prepared.y_train),
            batch_size=REFERENCE.batch_size,
            shuffle=True,
        )
        val = DataLoader(
            TrackDataset(prepared.x_val, prepared.y_val), batch_size=REFERENCE.batch_size
        )
        model.train()
        running = 0.0
        for xb, yb in train:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(xb)
        model.eval()
        val_sum = 0.0
        with torch.no_grad():
            for xb, yb in val:
                val_sum += criterion(model(xb), yb).item() * len(xb)

    run()


def fit_epoch(prepared: Prepared, config: ModelConfig = REFERENCE) -> None:
    fit(config, prepared, epochs=1, seed=0, threads=1)


def matmul_gflops() -> float:
    """Best single-thread float32 matmul throughput over a few large square sizes."""
    best = 0.0
    for n in (384, 512, 768, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        reps = max(3, int(1.5e9 / (2 * n**3)))
        seconds = timed(lambda a=a, b=b, reps=reps: [a @ b for _ in range(reps)]) / reps
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def _linear_shapes(config: ModelConfig) -> list[tuple[int, int]]:
    model = build_model(config)
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def step_flops(config: ModelConfig, batch: int) -> float:
    """Matmul FLOPs of one training step: forward, weight gradients, input gradients (not for
    the first layer, whose input needs none). Elementwise work is left out: it is not compute
    bound, and counting it would only flatter the ratio."""
    shapes = _linear_shapes(config)
    forward = sum(2 * batch * i * o for i, o in shapes)
    grad_input = sum(2 * batch * i * o for i, o in shapes[1:])
    return 2 * forward + grad_input


def shape_matmul_seconds(config: ModelConfig, batch: int) -> float:
    """One step's matmuls timed on their own, at the model's own shapes (thin: K=10, N=1...)."""
    ops = []
    for k, (i, o) in enumerate(_linear_shapes(config)):
        x, w, g = torch.randn(batch, i), torch.randn(o, i), torch.randn(batch, o)
        bias = torch.randn(o)
        ops.append(lambda x=x, w=w, b=bias: torch.addmm(b, x, w.t()))  # forward
        ops.append(lambda x=x, g=g: g.t().mm(x))  # weight gradient
        if k:
            ops.append(lambda w=w, g=g: g.mm(w))  # input gradient
    return best_of(lambda: [op() for op in ops])


def dropout_rng_seconds(config: ModelConfig, batch: int) -> float:
    """One step's dropout masks (the default CPU generator's bernoulli_), timed on their own."""
    masks = [torch.empty(batch, w) for w in config.widths[:-1]]
    return best_of(lambda: [m.bernoulli_(0.8) for m in masks])


def best_of(step: Callable[[], object], groups: int = 5, reps: int = 10) -> float:
    """Seconds per call of ``step``: the best of a few groups, the one least disturbed."""
    step()
    return min(timed(lambda: [step() for _ in range(reps)]) / reps for _ in range(groups))


def run() -> list[Figure]:
    torch.set_num_threads(1)
    prepared = full_prepared("none")
    rows = len(prepared.x_train)
    fit(REFERENCE, prepared, epochs=1, seed=0, threads=1)  # warm-up: first-call costs aside
    runs = paired(lambda: fit_epoch(prepared), lambda: reference_epoch(prepared), 5)
    fit_s, ref_s = min(t.wall for t in runs.a), min(t.wall for t in runs.b)
    steps = -(-rows // REFERENCE.batch_size)
    figures = [
        Figure(
            "train: fit epoch / per-item DataLoader epoch (batch 64)",
            runs.ratio,
            "<= 0.5",
            f"fit {fit_s:.2f} s ({fit_s / steps * 1e6:.0f} µs/step) vs reference loop "
            f"{ref_s:.2f} s ({ref_s / steps * 1e6:.0f} µs/step); {rows:,} training rows, "
            f"{steps:,} steps, validation included, 1 torch thread; best of 5, run in turn "
            f"(ratio of each pair: {runs.pair_ratios()}; in CPU time {runs.cpu_ratio:.3f})",
        )
    ]

    large = dataclasses.replace(REFERENCE, batch_size=LARGE_BATCH)
    large_s = min(measure(lambda: fit_epoch(prepared, large)).wall for _ in range(3))
    large_steps = -(-rows // LARGE_BATCH)
    flops = step_flops(large, LARGE_BATCH) * large_steps
    peak = matmul_gflops()
    at_shapes = shape_matmul_seconds(large, LARGE_BATCH) * large_steps
    dropout = dropout_rng_seconds(large, LARGE_BATCH) * large_steps
    figures.append(
        Figure(
            "train: compute-bound limit / batch-2048 epoch",
            flops / (peak * 1e9) / large_s,
            "",
            f"epoch {large_s:.3f} s; its {flops / 1e9:.1f} GFLOP of matmul at this machine's "
            f"best {peak:.0f} GFLOP/s (1 thread) take {flops / peak / 1e9:.3f} s. "
            f"At the model's own thin shapes the matmuls alone take {at_shapes:.3f} s "
            f"({at_shapes / large_s:.0%} of the epoch) and the dropout masks {dropout:.3f} s "
            f"({dropout / large_s:.0%}); the rest is elementwise work and dispatch",
        )
    )
    return figures
