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
