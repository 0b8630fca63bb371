"""A trial restarted from its checkpoint keeps the rows the driver logged for it: Tune's own
loggers copy the storage's (older) copy of the log over the driver's on a restart."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.fs
import pytest
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from poptune.compat import PUBLIC_PATHS_ENV
from poptune.driver.trial_logs import TrialCsvLog, TrialJsonLog


class _Storage:
    def __init__(self, trial_fs_path: Path) -> None:
        self.trial_fs_path = trial_fs_path.as_posix()
        self.storage_filesystem = pyarrow.fs.LocalFileSystem()


class _Trial:
    """The part of Tune's Trial its loggers read, with the driver's and the storage's trial
    folders apart, as in a search (the driver's is a staging folder synced to storage)."""

    def __init__(self, tmp_path: Path, checkpoint: object = "a checkpoint") -> None:
        self.local_path = str(tmp_path / "driver" / "trial")
        self.storage = _Storage(tmp_path / "storage" / "trial")
        self.config = {"lr": 0.01}
        self.checkpoint = checkpoint

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def _write_rows(folder: str | Path, epochs: range) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"epoch": e}) + "\n" for e in epochs)
    Path(folder, "result.json").write_text(rows)


def _epochs(folder: str) -> list[int]:
    lines = Path(folder, "result.json").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def _restart(logger, trial: _Trial, next_epoch: int) -> None:
    logger.log_trial_start(trial)  # what Tune calls when a failed trial starts again
    logger.log_trial_result(next_epoch, trial, {"epoch": next_epoch})
    logger.log_trial_end(trial)


def test_a_restarted_trial_keeps_the_rows_logged_since_the_last_sync(tmp_path: Path) -> None:
    trial = _Trial(tmp_path)
    _write_rows(trial.local_path, range(1, 8))  # the driver logged 7 epochs...
    _write_rows(trial.storage.trial_fs_path, range(1, 4))  # ...storage last saw 3
    # The checkpoint was of epoch 7 (Tune saves it with the row): the trial goes on at 8.
    _restart(TrialJsonLog(), trial, 8)
    assert _epochs(trial.local_path) == list(range(1, 9))


def test_tunes_own_logger_drops_those_rows(tmp_path: Path) -> None:
    # The reason for TrialJsonLog: should a Ray stop dropping them, this fails, and the
    # override can go.
    trial = _Trial(tmp_path)
    _write_rows(trial.local_path, range(1, 8))
    _write_rows(trial.storage.trial_fs_path, range(1, 4))
    _restart(JsonLoggerCallback(), trial, 8)
    assert _epochs(trial.local_path) == [1, 2, 3, 8]


def test_a_driver_without_the_log_copies_it_from_storage(tmp_path: Path) -> None:
    # A search resumed in a new Ray session (or on another machine) has no driver copy yet.
    trial = _Trial(tmp_path)
    trial.init_local_path()  # Tune makes the trial's folder before its loggers run
    _write_rows(trial.storage.trial_fs_path, range(1, 4))
    _restart(TrialJsonLog(), trial, 4)
    assert _epochs(trial.local_path) == [1, 2, 3, 4]


def test_a_longer_storage_copy_wins(tmp_path: Path) -> None:
    trial = _Trial(tmp_path)
    _write_rows(trial.local_path, range(1, 2))
    _write_rows(trial.storage.trial_fs_path, range(1, 4))
    _restart(TrialJsonLog(), trial, 4)
    assert _epochs(trial.local_path) == [1, 2, 3, 4]


def test_the_csv_log_keeps_its_rows_and_one_header(tmp_path: Path) -> None:
    trial = _Trial(tmp_path)
    first = TrialCsvLog()
    for epoch in range(1, 6):
        first.log_trial_result(epoch, trial, {"epoch": epoch, "loss": 1.0 / epoch})
    first.log_trial_end(trial)
    Path(trial.storage.trial_fs_path).mkdir(parents=True)
    lines = Path(trial.local_path, "progress.csv").read_text().splitlines()
    Path(trial.storage.trial_fs_path, "progress.csv").write_text("\n".join(lines[:3]) + "\n")
    second = TrialCsvLog()
    second.log_trial_result(6, trial, {"epoch": 6, "loss": 1.0 / 6})
    second.log_trial_end(trial)
    with Path(trial.local_path, "progress.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6]


def test_with_the_public_paths_forced_tunes_restore_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_PATHS_ENV, "1")
    trial = _Trial(tmp_path)
    _write_rows(trial.local_path, range(1, 8))
    _write_rows(trial.storage.trial_fs_path, range(1, 4))
    _restart(TrialJsonLog(), trial, 8)
    assert _epochs(trial.local_path) == [1, 2, 3, 8]


def test_tune_adds_no_second_json_or_csv_logger() -> None:
    from ray.tune.utils.callback import _create_default_callbacks

    ours = [TrialJsonLog(), TrialCsvLog()]
    callbacks = _create_default_callbacks(ours, air_verbosity=None)
    assert sum(isinstance(c, JsonLoggerCallback) for c in callbacks) == 1
    assert sum(isinstance(c, CSVLoggerCallback) for c in callbacks) == 1
