"""`--resume` takes the experiment's own settings; options that would change the search are
refused (no Ray: the experiment's poptune_search.json is written by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poptune.data import DataSource
from poptune.driver.resume import resumed_settings
from poptune.driver.settings import SearchSettings
from poptune.errors import ExperimentError, UsageError
from poptune.layout import SEARCH_FILE
from poptune.storage.location import ExperimentLocation

SHA = "ab" * 32


@pytest.fixture
def started(tmp_path: Path) -> SearchSettings:
    """The settings an experiment `exp` under tmp_path/runs was started with."""
    original = SearchSettings(
        data=DataSource(synthetic_rows=3000), num_samples=10, max_epochs=6, scheduler="fifo",
        storage=str(tmp_path / "runs"), name="exp", seed=3, force=True,
    )  # fmt: skip
    exp_dir = tmp_path / "runs" / "exp"
    exp_dir.mkdir(parents=True)
    meta = {"settings": original.to_dict(), "data": {"sha256": SHA}, "wall_s": None}
    (exp_dir / SEARCH_FILE).write_text(json.dumps(meta))
    return original


def resume(tmp_path: Path, **given) -> SearchSettings:
    return SearchSettings(storage=str(tmp_path / "runs"), name="exp", resume=True, **given)


def test_resume_takes_the_saved_settings_not_todays_defaults(started, tmp_path):
    settings, sha = resumed_settings(resume(tmp_path), explicit={"storage", "name", "resume"})
    assert sha == SHA
    assert (settings.num_samples, settings.max_epochs, settings.scheduler, settings.seed) == (
        10, 6, "fifo", 3,
    )  # fmt: skip
    assert settings.data == DataSource(synthetic_rows=3000)
    assert settings.resume and not settings.force  # the start's --force is not replayed


def test_resume_options_may_differ(started, tmp_path):
    given = resume(tmp_path, address="10.0.0.5:6379", retry_errored=True)
    settings, _ = resumed_settings(given, explicit={"name", "resume", "address", "retry_errored"})
    assert settings.address == "10.0.0.5:6379" and settings.retry_errored
    assert settings.num_samples == 10


@pytest.mark.parametrize(
    ("given", "flag", "message"),
    [
        ({"num_samples": 20}, "num_samples", "--num-samples 20: the experiment exp was started "
         "with 10"),
        ({"max_epochs": 12}, "max_epochs", "--max-epochs 12: "),
        ({"scheduler": "asha"}, "scheduler", "--scheduler asha: "),
        ({"data": DataSource(synthetic_rows=500)}, "synthetic_rows", "--synthetic-rows 500: "),
    ],
)  # fmt: skip
def test_options_that_would_change_the_search_are_refused(started, tmp_path, given, flag, message):
    with pytest.raises(UsageError, match="resumed search keeps its settings") as info:
        resumed_settings(resume(tmp_path, **given), explicit={"name", "resume", flag})
    assert message in str(info.value) and "another --name" in str(info.value)


def test_the_same_value_given_again_is_fine(started, tmp_path):
    settings, _ = resumed_settings(
        resume(tmp_path, num_samples=10, seed=3), explicit={"name", "resume", "num_samples", "seed"}
    )
    assert settings.num_samples == 10


def test_a_moved_data_file_is_accepted_and_checked_by_sha256(started, tmp_path):
    given = resume(tmp_path, data=DataSource(path="/elsewhere/tracks.csv"))
    settings, sha = resumed_settings(given, explicit={"name", "resume", "data"})
    assert settings.data.path == "/elsewhere/tracks.csv" and sha == SHA


def test_nothing_to_resume(tmp_path):
    with pytest.raises(ExperimentError, match="there is no experiment at"):
        resumed_settings(resume(tmp_path), explicit={"name", "resume"})
    (tmp_path / "runs" / "exp").mkdir(parents=True)  # an empty folder is no experiment either
    with pytest.raises(ExperimentError, match="there is no experiment at"):
        resumed_settings(resume(tmp_path), explicit={"name", "resume"})
    (tmp_path / "runs" / "exp" / "notes.txt").write_text("not poptune's")
    with pytest.raises(ExperimentError, match=f"{SEARCH_FILE} is missing"):
        resumed_settings(resume(tmp_path), explicit={"name", "resume"})


def test_remote_storage_reads_the_search_file_there(started, tmp_path, monkeypatch):
    """s3://, gs://: the same file, read through pyarrow (here redirected to the local copy)."""
    local = tmp_path / "runs" / "exp" / SEARCH_FILE
    asked: list[str] = []

    def fake_read(location: ExperimentLocation, *parts: str) -> dict:
        asked.append(location.join(*parts))
        return json.loads(local.read_text())

    monkeypatch.setattr(ExperimentLocation, "read_json", fake_read)
    monkeypatch.setattr(ExperimentLocation, "holds_files", lambda location: True)
    given = SearchSettings(storage="s3://bucket/runs", name="exp", resume=True)
    settings, sha = resumed_settings(given, explicit={"storage", "name", "resume"})
    assert asked == [f"s3://bucket/runs/exp/{SEARCH_FILE}"]
    assert settings.storage == "s3://bucket/runs" and settings.num_samples == 10 and sha == SHA


def test_an_experiment_location_reads_back_what_it_wrote_and_names_what_is_missing(tmp_path):
    at = ExperimentLocation.of(f"file://{tmp_path}/exp")  # a file:// URI is a local folder
    assert not at.is_remote and at.local_dir == tmp_path / "exp"
    assert not at.holds_files()
    assert at.write_json({"wall_s": 1.5}, "deep", SEARCH_FILE) == str(
        tmp_path / "exp" / "deep" / SEARCH_FILE
    )
    assert at.holds_files() and at.read_json("deep", SEARCH_FILE) == {"wall_s": 1.5}
    with pytest.raises(FileNotFoundError, match=r"exp/none\.json"):
        at.read_json("none.json")
    assert at.read_json_or_none("none.json") is None
    for trial, saved in (("t0", 3), ("t1", 1)):
        for n in range(saved):
            (tmp_path / "exp" / trial / f"checkpoint_{n:06d}").mkdir(parents=True)
    assert at.prune_checkpoints() == 2
    assert sorted(p.name for p in (tmp_path / "exp" / "t0").iterdir()) == ["checkpoint_000002"]
    at.delete()
    assert not (tmp_path / "exp").exists() and not at.holds_files()
