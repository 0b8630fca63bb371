"""How closely two computations must agree, and why: the one place the suite states it.

Two kinds of promise, kept apart because CPUs differ:

- **Replayed**: the same code on the same shapes, layouts and machine (the same seed twice, a
  resume against the run it continues, a bundle against the model it saved). These are
  compared bit for bit, and that holds on any CPU: a kernel given the same operands runs the
  same instructions.
- **Equivalent**: two different computations of the same maths (predictions in chunks against
  one pass, `FlatAdamW` against `torch.optim.AdamW`, `fit` against the plain loop it replaced).
  Math libraries choose kernels by shape, alignment and CPU: Intel's MKL, the BLAS of torch's
  CPU build, sums a matmul's products in an order that depends on the row count on some CPUs
  (on AMD EPYC, and on Intel under ``MKL_CBWR=AVX2``), and an elementwise kernel may use a
  fused multiply-add in its vector body but not in its scalar tail. These are compared to the
  tolerances below; on the Intel machines the suite was written on they happen to agree bit
  for bit.

`make test` runs the tests that compare numbers again under other MKL and ATen code paths, so a
promise that only holds on the developer's CPU fails there, not on a user's.
"""

from __future__ import annotations

import numpy as np

# float32 rounds each operation to within 2^-24 (6e-8) of its value. A matmul of K ≤ 512 terms
# summed in another order moves a result by at most K·2^-24 of the sum of the magnitudes; a
# prediction passes four such layers. Measured under MKL_CBWR=AVX2: 6e-9 relative.
PREDICTION_RTOL = 1e-5
PREDICTION_ATOL = 1e-4  # popularity points, for predictions near zero

# Training amplifies a difference in the last bit. Measured by nudging every initial weight by one
# float32 step and training 3 epochs: val_mse moved by ≤ 1.6e-7 relative, weights by ≤ 1.5e-7.
CURVE_RTOL = 1e-5
WEIGHT_ATOL = 1e-5
# Except after BatchNorm: the Linear bias in front of a BatchNorm layer has a gradient that is
# zero but for rounding, and Adam scales that noise into steps as large as the learning rate, so
# the same nudge moved val_mse by 3e-3 relative and a bias by 4e-2.
BATCHNORM_CURVE_RTOL = 2e-2
BATCHNORM_WEIGHT_ATOL = 0.5


def curve_rtol(family: str) -> float:
    return BATCHNORM_CURVE_RTOL if "BatchNorm" in family else CURVE_RTOL


def weight_atol(family: str) -> float:
    return BATCHNORM_WEIGHT_ATOL if "BatchNorm" in family else WEIGHT_ATOL


def assert_curves_close(ours: list[dict], theirs: list[dict], *, rtol: float) -> None:
    """Same epochs and divergence flags; every number within ``rtol`` (relative)."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                np.testing.assert_allclose(a[key], b[key], rtol=rtol, err_msg=key)
            else:
                assert a[key] == b[key], key


# TPE's draws, with SciPy's log Φ in place of Optuna's (the same routine, vectorised, within 6e-8
# relative of it): a point is found by Newton's method to 1e-8 relative, and the other log Φ moves
# it in its last bits. Measured on tests/test_batch_tpe.py's bowl: most within a few ulp, at most
# 5e-14 relative (a value near zero, where the kernel's mean and its draw cancel).
TPE_DRAW_RTOL = 1e-12


def assert_suggestions_close(ours: list[dict], theirs: list[dict]) -> None:
    """The same keys and choices (categories, integers); floats within TPE_DRAW_RTOL."""
    assert_curves_close(ours, theirs, rtol=TPE_DRAW_RTOL)
