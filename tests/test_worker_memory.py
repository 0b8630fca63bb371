"""What keeps a trial worker small changes no result: predictions in chunks agree with one pass
(to float32 rounding: a matmul's kernel may depend on its row count), the input map in chunks
gives the same bits (elementwise only), the per-step losses read as numbers sum to the same epoch
loss, and the private Ray's workers get their one malloc arena without the driver's environment
keeping it.

The memory itself is measured by `python -m benchmarks search` (benchmarks/search.py).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from localray.env import private_ray_env
from poptune.trainables import FAMILIES, build_model, loop, steps
from poptune.trainables.features import QuantileInput
from tests.numerics import PREDICTION_ATOL, PREDICTION_RTOL
from tests.test_models import config_for


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("features", ["quantile", "robust"])
def test_predict_in_chunks_agrees_with_one_pass(family, features, small_prepared, monkeypatch):
    torch.manual_seed(0)
    model = build_model(config_for(family, features=features))
    x_train = torch.from_numpy(small_prepared.x_train)
    if isinstance(model[0], QuantileInput):
        model[0].fit(x_train)
    scale = loop.TargetScale(mean=40.0, std=15.0)
    monkeypatch.setattr(steps, "_CPU_EVAL_BATCH", 10**9)
    whole = loop.predict(model, small_prepared.x_val, scale)
    monkeypatch.setattr(steps, "_CPU_EVAL_BATCH", 64)  # many chunks and a ragged last one
    chunked = loop.predict(model, small_prepared.x_val, scale)
    np.testing.assert_allclose(chunked, whole, rtol=PREDICTION_RTOL, atol=PREDICTION_ATOL)
    assert not np.allclose(chunked[1:], whole[:-1])  # row for row, not merely similar values
    if isinstance(model[0], QuantileInput):
        # The training rows' map, as fit runs it: no sums, each element by itself, so any
        # chunking gives the same bits.
        mapped = torch.cat([model[0](rows) for rows in x_train.split(64)])
        assert torch.equal(model[0](x_train), mapped)


def test_epoch_loss_from_numbers_is_the_same_bits_as_from_tensors():
    gen = torch.Generator().manual_seed(3)
    losses = [torch.rand((), generator=gen) * 10 ** (i % 7 - 3) for i in range(1001)]
    sizes = [64] * 1000 + [17]
    from_tensors = steps.epoch_loss(losses, sizes)
    from_numbers = steps.epoch_loss([x.item() for x in losses], sizes)
    assert from_numbers == from_tensors


PROBE = """
import os, ray
from poptune.cluster.session import ray_session
with ray_session(None, num_cpus=1):
    worker = ray.get(ray.remote(lambda: os.environ.get("MALLOC_ARENA_MAX")).remote())
print(worker, os.environ.get("MALLOC_ARENA_MAX"))
"""


@pytest.mark.ray
@pytest.mark.parametrize(("ours", "expected"), [(None, "1 None"), ("4", "4 4")])
def test_private_ray_workers_get_one_malloc_arena_unless_the_user_sets_it(tmp_path, ours, expected):
    with private_ray_env(tmp_path / "home") as env:
        env.pop("MALLOC_ARENA_MAX", None)
        if ours is not None:
            env["MALLOC_ARENA_MAX"] = ours
        proc = subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[-2] == expected
