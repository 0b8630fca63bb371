"""The Python API: the worked example of docs/python-api.md runs as written, on the session Ray
cluster, and what it returns agrees with the files the experiment holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import poptune
from poptune.driver.settings import SearchSettings
from poptune.errors import ExperimentError, UsageError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
HEAVY = ("ray", "torch", "pandas", "optuna", "mlflow", "sklearn", "pyarrow")


def doc_example() -> str:
    """The code block that follows the `<!-- example -->` marker in docs/python-api.md."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- example -->\n```python\n(.*?)\n```", text, re.DOTALL)
    assert found, f"{DOC} has no <!-- example --> python block"
    return found.group(1)


@pytest.mark.parametrize(
    "name", ["", "SearchSettings", "AnalyzeSettings", "DataSource", "run", "analyze", "search"]
)
def test_import_poptune_and_its_settings_loads_nothing_heavy(name):
    """Settings are built before any slow work: naming them, or the calls, imports neither torch
    nor Ray (a call's own guard of the caller's process state begins only once it is called)."""
    use = f"poptune.{name}; " if name else ""
    code = f"import sys, poptune; {use}print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_search_is_a_function_and_no_package_shadows_it():
    import poptune.driver.settings  # the search's package loaded: poptune.search is still the call
    from poptune.api import search

    assert poptune.search is search
    assert {"run", "analyze", "load", "search", "Experiment", "SearchSettings"} <= set(dir(poptune))


def test_errors_are_exceptions_naming_the_fix(tmp_path):
    with pytest.raises(UsageError, match="--num-samples must be a positive integer, but got 0"):
        SearchSettings(num_samples=0)
    with pytest.raises(ExperimentError, match=r"has no poptune_search\.json"):
        poptune.load(tmp_path)


@pytest.mark.ray
def test_the_worked_example_runs_as_written(ray_cluster, ray_env, tmp_path):
    env = {**os.environ, **ray_env, "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.run(
        [sys.executable, "-c", doc_example()],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / "runs" / "notebook"
    lines = proc.stdout.splitlines()
    assert str(exp) in lines and "None" in lines  # the location, then no metrics yet
    assert "poptune: searching 4 trials × up to 2 epochs (asha)" in proc.stdout
    assert f"{exp}/analysis/report.html" in lines

    experiment = poptune.load(exp)
    metrics = json.loads((exp / "analysis" / "metrics.json").read_text())
    best = json.loads((exp / "best_config.json").read_text())
    best.pop("reproduce")
    assert experiment.metrics == metrics
    assert experiment.best_config == best == metrics["best_config"]
    assert experiment.name == "notebook" and experiment.errored == experiment.unfinished == 0
    assert experiment.search["settings"]["num_samples"] == 4

    trials = experiment.trials
    assert len(trials) == 4 and set(trials["state"]) == {"TERMINATED"}
    assert {"trial_id", "best_val_mse", "best_epoch", "epochs", "family", "lr"} <= set(trials)
    assert trials["best_val_mse"].is_monotonic_increasing  # best first
    assert trials["epochs"].between(1, 2).all()
    # The first trial is the reference model, so its row carries all three widths.
    reference = trials[(trials["family"] == "MLP3LayerDropout") & (trials["width_1"] == 128)]
    assert len(reference) == 1 and reference["dropout"].iloc[0] == 0.2


STATE_SCRIPT = """
import logging, os, sys, warnings
import torch
import poptune
from poptune import AnalyzeSettings, DataSource, SearchSettings

torch.set_num_threads(1)
torch.manual_seed(1234)
logging.getLogger("optuna").setLevel(logging.DEBUG)

def state():
    return (torch.get_num_threads(), torch.random.get_rng_state().tolist(), dict(os.environ),
            logging.getLogger("optuna").level, logging.getLogger("ray.tune").level,
            list(warnings.filters))

before = state()
settings = SearchSettings(data=DataSource(synthetic_rows=600), num_samples=2, max_epochs=1,
                          storage=sys.argv[1], name="state")
poptune.run(settings, AnalyzeSettings(seeds=1, finalists=1), log=lambda _: None)
after = state()
names = ("threads", "rng", "environ", "optuna logger", "ray.tune logger", "warnings")
print("CHANGED", [n for n, b, a in zip(names, before, after) if b != a])
print("DRAW", torch.rand(1).item(), torch.manual_seed(1234) and torch.rand(1).item())
"""


@pytest.mark.ray
def test_a_run_leaves_the_callers_process_as_it_found_it(ray_cluster, ray_env, tmp_path):
    """Threads, the global random stream, the environment, logger levels and warning filters
    are the notebook's own again once poptune.run returns (training sets threads and seeds,
    the search sets Ray's environment and quiets Optuna and Tune)."""
    env = {**os.environ, **ray_env, "RAY_ADDRESS": ray_cluster.address}
    args = [sys.executable, "-c", STATE_SCRIPT, str(tmp_path / "runs")]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CHANGED []" in proc.stdout.splitlines()
    draw = next(x for x in proc.stdout.splitlines() if x.startswith("DRAW")).split()
    assert draw[1] == draw[2]  # the stream goes on from where the caller's seed left it
