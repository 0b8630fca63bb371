"""One small finished ASHA search on the session cluster, shared by the tests that open a poptune
experiment with other people's tools (optuna-dashboard, Ray Tune's own API). It runs once per
test session, for whichever of those tests comes first.

The trials run one at a time (``--max-concurrent 1``): ASHA then sees the results in a fixed
order, and with seeded data, sampler and models its decisions are the same on every run. With
this seed the first trial (the reference model) runs all epochs and every later one is stopped
at the first rung, so the study has COMPLETE and PRUNED trials for certain, not by luck.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localray.cluster import LocalCluster

NAME = "asha"
SAMPLES = 4
MAX_EPOCHS = 3

_finished: dict[str, Path] = {}


def asha_experiment(
    cluster: LocalCluster, token: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The experiment directory of the shared search (run on the first call)."""
    if NAME not in _finished:
        root = tmp_path_factory.mktemp("shared-search")
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
               "RAY_ADDRESS": ""}  # fmt: skip
        args = [sys.executable, "-m", "poptune", "search", "--address", cluster.address,
                "--synthetic-rows", "2000", "--num-samples", str(SAMPLES),
                "--max-epochs", str(MAX_EPOCHS), "--grace-period", "1", "--max-concurrent", "1",
                "--seed", "0", "--storage", str(root / "runs"), "--name", NAME]  # fmt: skip
        proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _finished[NAME] = root / "runs" / NAME
    return _finished[NAME]
