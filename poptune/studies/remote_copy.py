"""The Optuna study of a search on remote storage, saved into the experiment as optuna_study.db.

Without --study-storage the searcher keeps the study in memory, and Tune saves it
with the searcher's state (``searcher-state-*.pkl``) in the experiment: that is what --resume
restores. A local experiment gets a SQLite copy at each save (studies/study_file.py); SQLite
cannot live in a bucket (it needs file locks and in-place writes), so with s3:// or gs://
storage, when the search ends, this module copies that study into a SQLite file and uploads it
as the experiment's optuna_study.db, so the analysis (hyperparameter importance) and
optuna-dashboard find it where they find a local search's study.
"""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import optuna
import pyarrow.fs

from poptune import uri
from poptune.compat import ray_tune_compat
from poptune.layout import STUDY_FILE
from poptune.storage.location import ExperimentLocation

SEARCHER_STATE_PREFIX = "searcher-state-"  # Tune's name for a saved searcher


def save_remote_study(experiment: str, study_name: str) -> int:
    """Upload the study saved with the searcher at ``experiment`` as its optuna_study.db;
    return the number of trials it holds (0, and nothing written, if no searcher was saved).

    The search is done and saved by then: a copy that fails costs the study file, not the
    search, so it is a warning on stderr rather than an error."""
    try:
        return _save(experiment, study_name)
    except Exception as exc:
        print(
            f"poptune: warning: the Optuna study was not saved as {STUDY_FILE} in "
            f"{uri.shown(experiment)} ({type(exc).__name__}: {exc}); the search itself is "
            "saved and resumable",
            file=sys.stderr,
            flush=True,
        )
        return 0


def _save(experiment: str, study_name: str) -> int:
    study = _saved_study(experiment)
    if study is None:
        return 0
    with tempfile.TemporaryDirectory(prefix="poptune-study-") as tmp:
        path = Path(tmp) / STUDY_FILE
        copy = optuna.create_study(
            storage=f"sqlite:///{path}", study_name=study_name, directions=study.directions
        )
        # Finished trials only: a trial still running has no outcome to record yet.
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        copy.add_trials(trials)
        ExperimentLocation(experiment).upload(path, STUDY_FILE)
    return len(trials)


def _saved_study(experiment: str) -> optuna.Study | None:
    fs, root = ExperimentLocation(experiment).filesystem()
    states = sorted(
        (info for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
         if info.base_name.startswith(SEARCHER_STATE_PREFIX)),
        key=lambda info: info.mtime or 0,
    )  # fmt: skip
    if not states:
        return None
    # Our own searcher's state, written by this search (a resumed search unpickles it anyway).
    with fs.open_input_stream(states[-1].path) as stream:
        state = pickle.loads(stream.read())
    study = ray_tune_compat.saved_optuna_study(state)
    return study if isinstance(study, optuna.Study) else None
