"""The one door to Optuna's private names: outside the versions it was written for (or with
POPTUNE_PUBLIC_PATHS=1) the search takes Optuna's public paths, says so once, and still runs."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from poptune import compat
from poptune.compat import optuna_private
from poptune.layout import STUDY_FILE
from poptune.search.runner import _sampler
from poptune.search.settings import SearchSettings
from poptune.search.study import SingleWriterStorage, driver_study_storage
from poptune.search.study_file import StudyFile
from poptune.search.window import WindowedSampler
from tests.test_study_file import _ask, _read, _view

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(compat, "_warned", set())
    monkeypatch.delenv(compat.PUBLIC_PATHS_ENV, raising=False)


def test_the_installed_optuna_takes_the_fast_paths(tmp_path, capsys):
    assert optuna_private.fast_paths()
    assert isinstance(_sampler(SearchSettings(name="x")), WindowedSampler)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(driver_study_storage(storage), SingleWriterStorage)
    assert capsys.readouterr().err == ""


def test_another_optuna_takes_the_public_paths_and_says_so_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(optuna, "__version__", "5.1.0")
    sampler = _sampler(SearchSettings(name="x", seed=3))
    assert type(sampler) is optuna.samplers.TPESampler
    assert sampler._constant_liar and sampler._multivariate and sampler._group
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    assert driver_study_storage(storage) is storage
    assert not optuna_private.fast_paths()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "poptune: warning: Optuna 5.1.0 is not a version poptune was written for (5.0); using "
        "Optuna's own TPESampler and storage API (the same search, slower per suggestion at "
        "thousands of trials)"
    ]


def test_the_study_copy_on_the_public_path_equals_the_study(monkeypatch, tmp_path):
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    url = f"sqlite:///{tmp_path / 'optuna_study.db'}"
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    copy = StudyFile(url, "s")
    running = []
    for i in range(6):
        trial = _ask(study)
        trial.report(float(i), step=1)
        if i % 3 == 0:
            running.append(trial)
        elif i % 3 == 1:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, float(i))
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 6
    for trial in running:  # finished since the last write, and new ones
        study.tell(trial, 1.0)
    study.tell(_ask(study), 2.0)
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 7


@pytest.mark.ray
def test_a_search_on_the_public_paths_completes_every_trial(ray_cluster, ray_env, tmp_path):
    env = {**os.environ, **ray_env, compat.PUBLIC_PATHS_ENV: "1"}
    args = [sys.executable, "-m", "poptune", "search", "--address", ray_cluster.address,
            "--synthetic-rows", "800", "--num-samples", "6", "--max-epochs", "2",
            "--storage", str(tmp_path / "runs"), "--name", "public"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "POPTUNE_PUBLIC_PATHS is set; using Optuna's own TPESampler" in proc.stderr
    assert "6 finished, 0 errored, 0 unfinished" in proc.stdout
    url = f"sqlite:///{tmp_path / 'runs' / 'public' / STUDY_FILE}"
    study = optuna.load_study(study_name="public", storage=url)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)


def test_no_module_but_the_door_imports_optuna_private_modules():
    import re
    from pathlib import Path

    package = Path(optuna_private.__file__).parents[1]
    private = re.compile(r"^\s*(from|import) optuna\.\w+\._", re.MULTILINE)
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.parent.name != "compat" and private.search(p.read_text())
    ]
    assert offenders == []
