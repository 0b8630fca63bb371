"""torch's private names, and the code that copies torch's private code, checked from here only
(see :mod:`poptune.compat`).

What depends on them, and what each does outside the torch it was written for (or with
``POPTUNE_PUBLIC_PATHS=1``):

- the training loop's direct layer calls (``trainables/steps.py``: ``layer_by_layer``) are
  right only for a model without hooks, and torch keeps hooks in private globals of
  ``torch.nn.modules.module`` and private dicts of each module (:func:`may_have_hooks`) → every
  batch goes through ``nn.Module.__call__``, as for any model;
- ``FlatAdamW`` (``trainables/flat_adamw.py``) repeats, operation by operation, the arithmetic
  of torch's private ``torch.optim.adam._single_tensor_adam`` as torch 2.13 has it
  (:func:`flat_adamw_matches_torch`) → ``torch.optim.AdamW`` itself.
"""

from __future__ import annotations

import torch
from torch import nn

from poptune.compat import major_minor, off_reason, warn_once

# The torch releases (major, minor) whose private code the fast paths were written against:
# tests/test_determinism.py checks FlatAdamW's steps against torch.optim.AdamW of this release.
WRITTEN_FOR = ((2, 13),)

# Where torch keeps hooks: in the module's globals (registered for every module), and in each
# module (registered on it). nn.Module.__call__ runs them; calling a layer's forward skips them.
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def installed_version() -> tuple[int, int]:
    return major_minor(torch.__version__)  # "2.13.0+cpu"


def _private_paths(feature: str, fallback: str) -> bool:
    """True when this torch is one the fast path was written for and it is not turned off;
    otherwise False, after one warning (per feature) saying what ``fallback`` loses."""
    reason = off_reason("torch", torch.__version__, WRITTEN_FOR)
    if reason is None:
        return True
    warn_once(f"torch: {feature}", f"{reason}; {fallback}")
    return False


def may_have_hooks(model: nn.Module) -> bool:
    """False only when surely no hook is registered, globally or on any of ``model``'s modules
    (then calling each layer's ``forward`` computes what calling the model does). True, the
    safe answer, wherever that cannot be told: another torch, or the private names gone."""
    fallback = (
        "every training batch goes through nn.Module.__call__ (the same numbers; about 3 µs a "
        "layer, 6% of a batch-64 step of the reference model)"
    )
    if not _private_paths("hooks", fallback):
        return True
    from torch.nn.modules import module as torch_module

    try:
        if any(getattr(torch_module, name) for name in _GLOBAL_HOOKS):
            return True
        return any(getattr(m, name) for m in model.modules() for name in _MODULE_HOOKS)
    except AttributeError as exc:
        warn_once(
            "torch: hooks",
            f"torch {torch.__version__} lacks a private name poptune uses ({exc}); {fallback}",
        )
        return True


def flat_adamw_matches_torch() -> bool:
    """True when FlatAdamW's step is that of ``torch.optim.AdamW`` here: this torch is the one
    its arithmetic was copied from and checked against. Otherwise False (one warning), and
    training uses torch's own AdamW: the same maths, with whatever torch changed in it."""
    return _private_paths(
        "adamw",
        "training uses torch.optim.AdamW, not poptune's FlatAdamW (the same maths; torch's "
        "per-tensor update costs about a third of a batch-64 step of a small model on the CPU, "
        "and a process's first torch optimizer imports torch._dynamo: about a second and 70 MB "
        "a trial worker)",
    )
