"""Tune's Tuner of a search, new or restored: where it writes (a local experiment through a
file system whose files are whole or absent), how often a trial may fail, which checkpoints it
keeps, and poptune's callbacks. What it runs is :mod:`poptune.driver.tune_config`'s."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import pyarrow.fs
from ray import tune

from poptune import uri
from poptune.cluster import capacity
from poptune.cluster.autoscale import Autoscaling
from poptune.cluster.capacity import ClusterInfo
from poptune.driver.finished import FinishedTrials
from poptune.driver.progress import TrialProgress
from poptune.driver.resume import DAMAGED_PICKLE, has_tune_state, rebuildable_tuner_state
from poptune.driver.settings import SearchSettings
from poptune.driver.tensorboard import TrialTensorBoard
from poptune.driver.trial_logs import TrialCsvLog, TrialJsonLog
from poptune.driver.tune_config import tune_config
from poptune.storage.atomic_fs import atomic_local_filesystem
from poptune.studies.study_file import StudyFile


def new_tuner(
    settings: SearchSettings,
    trainable,
    cluster: ClusterInfo,
    autoscaling: Autoscaling | None,
    study_file: StudyFile | None,
    callbacks: Sequence[tune.Callback],
) -> tune.Tuner:
    """The Tuner of a new search (it writes the experiment's tuner.pkl)."""
    limit = capacity.max_concurrent(settings, cluster, autoscaling)
    print(f"poptune: up to {limit} trial(s) at once {_where(cluster, autoscaling)}", flush=True)
    storage_path, storage_filesystem = _storage(settings)
    return tune.Tuner(
        trainable,
        tune_config=tune_config(settings, max_concurrent=limit, study_file=study_file),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=storage_path,
            storage_filesystem=storage_filesystem,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            # Keep every checkpoint while the search runs: with num_to_keep, Tune deletes the
            # checkpoint its last saved state points to before it saves the next state, so a
            # driver killed in between could not resume that trial. Old checkpoints are
            # pruned once the search has finished.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=[
                TrialProgress(settings.num_samples, settings.max_epochs),
                TrialTensorBoard(settings.max_epochs),
                TrialJsonLog(),
                TrialCsvLog(),
                *callbacks,
                # Last: each callback before it sees a finished trial whole.
                FinishedTrials(),
            ],
            verbose=0,
        ),
    )


def restored_tuner(
    settings: SearchSettings, trainable, new_tuner: Callable[[], tune.Tuner]
) -> tune.Tuner:
    """Tune's Tuner of the experiment, from its tuner.pkl; if that file is cut short (a full
    disk, a crash while it was written), it is written again as a new search would, and Tune
    resumes from the trials and searcher state it saved beside it."""

    storage_path, storage_filesystem = _storage(settings)

    def restore() -> tune.Tuner:
        return tune.Tuner.restore(
            uri.join(storage_path, settings.name),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=settings.retry_errored,
            storage_filesystem=storage_filesystem,
        )

    if not has_tune_state(settings.experiment_uri):
        # Stopped before Tune saved anything (Ctrl-C while the cluster was joined): nothing ran,
        # so the search starts as it would have.
        return new_tuner()
    try:
        return restore()
    except DAMAGED_PICKLE as damage:
        line = rebuildable_tuner_state(settings.experiment_uri, damage)
    new_tuner()
    print(f"poptune: warning: {line}", file=sys.stderr, flush=True)
    return restore()


def _storage(settings: SearchSettings) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Where Tune writes the experiment: a local one through a file system whose files are
    whole or absent (poptune/storage/atomic_fs.py says why); a bucket through pyarrow's own."""
    if not settings.storage_is_local:
        return settings.storage_uri, None
    return str(uri.local_path(settings.storage_uri)), atomic_local_filesystem()


def _where(cluster: ClusterInfo, autoscaling: Autoscaling | None) -> str:
    if cluster.local:
        return f"on this machine ({cluster.cpus:g} CPUs)"
    grows = " and the nodes its autoscaler may add" if autoscaling is not None else ""
    return f"on {cluster.nodes} node(s) ({cluster.cpus:g} CPUs){grows}"
