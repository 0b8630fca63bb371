"""The per-trial progress count survives a resume; --force never deletes before it can run."""

from __future__ import annotations

import io
import socket
from types import SimpleNamespace

import pytest

from poptune import SearchSettings
from poptune.data import DataSource, prepare, synthetic_tracks
from poptune.driver.progress import TrialProgress
from poptune.driver.runner import run_search
from poptune.errors import UsageError


def _trial(trial_id: str, status: str, family: str = "MLP1Layer", epochs: int = 3):
    return SimpleNamespace(
        trial_id=trial_id,
        status=status,
        config={"family": family},
        last_result={"training_iteration": epochs},
        error_file=None,
    )


def test_progress_counts_trials_finished_before_a_resume():
    out = io.StringIO()
    progress = TrialProgress(num_samples=5, max_epochs=3, stream=out)
    # A resumed search: three trials finished in the first run, two more run now.
    trials = [_trial(f"t{i}", "TERMINATED") for i in range(3)]
    trials += [_trial("t3", "RUNNING"), _trial("t4", "RUNNING")]
    progress.on_trial_result(0, trials, trials[3], {"val_mse": 150.0})
    progress.on_trial_complete(0, trials, trials[3])
    trials[3].status = "TERMINATED"
    progress.on_trial_error(0, trials, trials[4])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[  4/5] t3 MLP1Layer")
    assert "best val_mse   150.000" in lines[0]
    assert lines[1].startswith("[  5/5] t4 ERRORED")


def test_force_with_an_unreachable_cluster_keeps_the_old_experiment(tmp_path):
    old = tmp_path / "runs" / "exp"
    old.mkdir(parents=True)
    (old / "best_config.json").write_text("{}")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = SearchSettings(
        data=DataSource(synthetic_rows=200),
        storage=str(tmp_path / "runs"),
        name="exp",
        force=True,
        address=f"127.0.0.1:{port}",
    )
    prepared = prepare(synthetic_tracks(200, 0), seed=0)
    with pytest.raises(UsageError, match="cannot reach"):
        run_search(settings, prepared)
    assert (old / "best_config.json").read_text() == "{}"


_RUN_SEARCH = """
import json, sys
from poptune import SearchSettings
from poptune.data import DataSource, prepare, synthetic_tracks
from poptune.driver.runner import run_search

settings = SearchSettings(data=DataSource(synthetic_rows=600), storage=sys.argv[1], name="direct",
                          num_samples=3, max_epochs=2, address=sys.argv[2])
outcome = run_search(settings, prepare(synthetic_tracks(600, 0), seed=0))
best = outcome.results.best()
print(json.dumps({"file": outcome.best_config, "trial_id": best.trial_id,
                  "val_mse": best.best_val_mse, "finished": outcome.terminated}))
"""


@pytest.mark.ray
def test_run_search_alone_leaves_the_best_trials_config(ray_cluster, ray_env, tmp_path):
    """Not only `poptune search`: a program calling the runner gets best_config.json too."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, **ray_env}
    args = [sys.executable, "-c", _RUN_SEARCH, str(tmp_path / "runs"), ray_cluster.address]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    written = tmp_path / "runs" / "direct" / "best_config.json"
    assert said["file"] == str(written) and said["finished"] == 3
    document = json.loads(written.read_text())
    assert document["reproduce"]["trial_id"] == said["trial_id"]
    assert document["reproduce"]["val_mse"] == said["val_mse"]
    assert document["family"] in (
        "MLP1Layer",
        "MLP2Layer",
        "MLP3LayerDropout",
        "MLP2LayerBatchNorm",
    )
