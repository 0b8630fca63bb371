"""AdamW over one flat buffer: the same arithmetic as `torch.optim.AdamW`, in a few kernel calls.

Why: torch's AdamW on CPU updates each parameter tensor in turn, about ten kernel launches per
tensor. For the small MLPs searched here (a 128-64-32 model has 11,777 weights) that dispatch
overhead costs more than the arithmetic: a third of a batch-64 training step. Here every
parameter is a view into one contiguous buffer, and so are its gradient and both moments, so a
step runs the update once over the whole buffer.

The arithmetic is that of `torch.optim.AdamW` with its default (per-tensor) CPU implementation:
the same elementwise operations run in the same order with the same Python scalars, and each
parameter keeps the memory alignment a tensor of its own has. On the Intel and AMD CPUs tried the
results are bit for bit torch's; the promise is a few float32 steps per update, since a kernel
may fuse a multiply-add in its vector body and not in its scalar tail, and an element's place in
the buffer decides which it meets (tests/test_determinism.py checks one step of every family
against torch's AdamW to that bound, and whole runs against the plain training loop).
`AdamW(fused=True)` rounds differently, so a seed would no longer give the curve it gave
before; and it is slower here. A whole training step (forward, backward, update) of the
reference model (10→128→64→32→1, dropout 0.2, lr 1e-3, weight decay 0) at batch 64 takes 0.84×
as long with this class as with `fused=True`: 545 vs 650 µs, medians of 12 interleaved rounds
of 500 steps each, paired ratio 0.83–0.85 over two runs (1 torch thread, torch 2.13 CPU, a
shared 2-core Intel Xeon VM, 2026-12-01).

`state_dict()` and `load_state_dict()` speak `torch.optim.AdamW`'s format, so checkpoints move
freely between the two, without building a `torch.optim` optimizer: the first one a process
builds imports torch._dynamo (sympy and 800 more modules): about a second and 70 MB per trial
worker.

The arithmetic is copied from one torch release (see `poptune.compat.torch_compat`): with any
other, or `POPTUNE_PUBLIC_PATHS=1`, `adamw` builds torch's own AdamW instead (`TorchAdamW`, the
same interface), with one warning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from poptune.compat import torch_compat

# torch's CPU allocator aligns tensors to 64 bytes, CUDA's caching allocator to 512.
_ALIGN_BYTES = 512
# The options torch.optim.AdamW records in every param group, at the values this class implements.
_TORCH_GROUP_DEFAULTS = {
    "amsgrad": False,
    "foreach": None,
    "maximize": False,
    "capturable": False,
    "differentiable": False,
    "fused": None,
    "decoupled_weight_decay": True,
}


class FlatAdamW:
    """AdamW (decoupled weight decay, no amsgrad) for parameters that all receive a gradient.

    Construction moves every parameter's data and gradient into flat buffers (the parameters
    stay the same objects, so the model and its `state_dict` are unchanged). Clear gradients
    with this optimizer's `zero_grad()`: it zeroes them in place, where the model's would
    replace them.
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        *,
        lr: float,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self._params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        like = self._params[0]
        # Every parameter starts on an aligned address, as a tensor of its own would: matmul
        # kernels pick their code path by alignment, and an unaligned weight changes the last
        # bits of a gradient. The padding between parameters stays zero throughout.
        align = _ALIGN_BYTES // like.element_size()
        self._offsets, end = [], 0
        for param in self._params:
            self._offsets.append(end)
            end += -(-param.numel() // align) * align
        self._flat = torch.zeros(end, dtype=like.dtype, device=like.device)
        self._grad = torch.zeros_like(self._flat)
        self._exp_avg = torch.zeros_like(self._flat)
        self._exp_avg_sq = torch.zeros_like(self._flat)
        self._step = 0
        self._released = False
        for param, view in zip(self._params, self._views(self._flat), strict=True):
            view.copy_(param.detach())
            param.data = view
        # Gradients are views too: backward adds into them in place (0 + g is exact), so a step
        # needs no gathering of gradients, and zero_grad is one fill.
        self._grad_views = self._views(self._grad)
        for param, view in zip(self._params, self._grad_views, strict=True):
            param.grad = view

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """``flat`` cut into tensors shaped like the parameters (views, no copies)."""
        return [
            flat[start : start + p.numel()].view_as(p)
            for p, start in zip(self._params, self._offsets, strict=True)
        ]

    def release(self) -> None:
        """Give every parameter its own storage again, e.g. before a model leaves `fit`.

        Views of one buffer trip savers that refuse shared storage (safetensors), and keep the
        optimizer's buffer alive. The optimizer must not step after this.
        """
        for param in self._params:
            param.data = param.data.clone()
            param.grad = param.grad.clone() if param.grad is not None else None
        self._released = True

    @property
    def steps(self) -> int:
        """Steps taken so far (restored by `load_state_dict`): what a schedule is a function of."""
        return self._step

    def zero_grad(self) -> None:
        self._grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        if self._released:
            raise RuntimeError("FlatAdamW.step() after release(): the parameters left the buffer")
        if any(p.grad is not g for p, g in zip(self._params, self._grad_views, strict=True)):
            raise RuntimeError(
                "a parameter's .grad was replaced (model.zero_grad()?); FlatAdamW reads gradients "
                "from its own buffer: clear them with the optimizer's zero_grad()"
            )
        self._step += 1
        lr, (beta1, beta2), grad = self.lr, self.betas, self._grad
        # Mirrors torch.optim.adam._single_tensor_adam (decoupled_weight_decay=True), operation
        # by operation and with the same Python floats: change nothing here without the tests.
        if self.weight_decay != 0:
            self._flat.mul_(1 - lr * self.weight_decay)
        self._exp_avg.lerp_(grad, 1 - beta1)
        self._exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self._step)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        denom = (self._exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
        self._flat.addcdiv_(self._exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """The state in `torch.optim.AdamW.state_dict()`'s format (copies, not views)."""
        state: dict[int, dict[str, torch.Tensor]] = {}
        if self._step:
            moments = zip(self._views(self._exp_avg), self._views(self._exp_avg_sq), strict=True)
            for index, (exp_avg, exp_avg_sq) in enumerate(moments):
                state[index] = {
                    "step": torch.tensor(float(self._step), dtype=torch.float32),
                    "exp_avg": exp_avg.clone(),
                    "exp_avg_sq": exp_avg_sq.clone(),
                }
        group = {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            **_TORCH_GROUP_DEFAULTS,
            "params": list(range(len(self._params))),
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from a state saved by this class or by `torch.optim.AdamW`."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self._params):
            raise ValueError("the saved optimizer state is for a different set of parameters")
        group = groups[0]
        if group.get("amsgrad") or group.get("maximize"):
            raise ValueError("FlatAdamW cannot continue an AdamW state with amsgrad or maximize")
        self.lr, self.weight_decay = float(group["lr"]), float(group["weight_decay"])
        self.betas, self.eps = tuple(group["betas"]), float(group["eps"])
        states = [state_dict["state"].get(i) for i in group["params"]]
        if not any(states):
            self._step = 0
            self._exp_avg.zero_()
            self._exp_avg_sq.zero_()
            return
        if not all(states):
            raise ValueError("FlatAdamW needs a saved state for every parameter or for none")
        for saved, param in zip(states, self._params, strict=True):
            if saved["exp_avg"].shape != param.shape:
                raise ValueError("the saved optimizer state does not fit these parameters' shapes")
        self._step = int(states[0]["step"])
        moments = zip(self._views(self._exp_avg), self._views(self._exp_avg_sq), strict=True)
        for saved, (exp_avg, exp_avg_sq) in zip(states, moments, strict=True):
            exp_avg.copy_(saved["exp_avg"])
            exp_avg_sq.copy_(saved["exp_avg_sq"])


class TorchAdamW(torch.optim.AdamW):
    """`torch.optim.AdamW` itself, with FlatAdamW's interface: `lr` (every group's rate),
    `steps` and `release()`. Its state is torch's own, so checkpoints move as they do between
    FlatAdamW and torch's AdamW."""

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    @property
    def steps(self) -> int:
        """Steps taken so far: every parameter's state counts the same ones."""
        for state in self.state.values():
            return int(state["step"])
        return 0

    def release(self) -> None:
        """Nothing to give back: each parameter has its own storage throughout."""


def adamw(
    params: Iterable[nn.Parameter], *, lr: float, weight_decay: float
) -> FlatAdamW | TorchAdamW:
    """The optimizer `fit` trains with: FlatAdamW where its arithmetic is that of the installed
    torch's AdamW, else torch's AdamW itself."""
    if torch_compat.flat_adamw_matches_torch():
        return FlatAdamW(params, lr=lr, weight_decay=weight_decay)
    return TorchAdamW(params, lr=lr, weight_decay=weight_decay)
