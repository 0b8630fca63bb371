"""The search itself: Tuner + OptunaSearch (TPE) + ASHA over the define-by-run space."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import optuna
import pyarrow.fs
from ray import tune

from poptune import uri
from poptune.cluster import capacity
from poptune.cluster.autoscale import Autoscaling, find_autoscaling
from poptune.cluster.capacity import ClusterInfo
from poptune.cluster.session import ray_session
from poptune.cluster.storage import local_storage_warning
from poptune.compat import optuna_private
from poptune.data import Prepared
from poptune.errors import UsageError
from poptune.layout import STUDY_FILE
from poptune.metric import METRIC, MODE
from poptune.search.batch_tpe import BatchTPESampler
from poptune.search.disk_full import TrialsHitFullDisk, watching_the_disk
from poptune.search.experiment_files import (
    check_experiment_dir,
    previous_wall_s,
    prune_checkpoints,
    replace_experiment_dir,
    write_search_file,
)
from poptune.search.finished import FinishedTrials
from poptune.search.progress import TrialProgress
from poptune.search.resources import per_trial
from poptune.search.resume import (
    DAMAGED_PICKLE,
    has_tune_state,
    rebuildable_tuner_state,
    saved_trial_counts,
)
from poptune.search.scheduling import NewestFirstASHA, NewestFirstFIFO
from poptune.search.searcher import PoptuneOptunaSearch, study_copy_of_this_run
from poptune.search.settings import SearchSettings
from poptune.search.signals import sigterm_as_sigint
from poptune.search.study import driver_study_storage
from poptune.search.study_file import StudyFile
from poptune.search.tensorboard import TrialTensorBoard
from poptune.search.window import BEST, RECENT, WindowedSampler
from poptune.spaces import FAMILY_STARTS, WEIGHT_DECAY_RANGE, define_space
from poptune.storage import remote
from poptune.storage.atomic_fs import atomic_local_filesystem
from poptune.trainables.config import REFERENCE
from poptune.trainables.splits import TrainingData
from poptune.trainables.tune import TrialSettings, train_trial


@dataclass(frozen=True)
class SearchOutcome:
    experiment: str
    trials: int
    terminated: int
    errored: int
    wall_s: float

    @property
    def unfinished(self) -> int:
        return self.trials - self.terminated - self.errored


def run_search(
    settings: SearchSettings,
    prepared: Prepared,
    *,
    callbacks: Sequence[tune.Callback] = (),
    trainable: Callable[[dict], None] | None = None,
    local_cpus: int | None = None,
    on_saved: Callable[[], None] | None = None,
) -> SearchOutcome:
    """Run (or resume) the search of ``settings`` on ``prepared``; return its trial counts.

    ``callbacks`` are extra Tune callbacks for a new search (benchmarks use them to time it).
    ``trainable`` replaces poptune's trial function by another Tune function trainable taking
    the config (benchmarks/scale.py: a surrogate that sleeps through its epochs, to measure the
    driver at a scale this machine could never train); it gets the same resources, and the
    rest of the search (searcher, scheduler, callbacks, checkpoints, files) stays as it is.
    ``local_cpus``: the CPUs a private local Ray advertises instead of this machine's own
    (simulating a bigger one); ignored when joining a cluster. ``on_saved`` is called once the
    experiment holds this search's poptune_search.json: from then on ``--resume`` continues it.

    A full disk under the experiment stops the search as Ctrl-C does, and then this raises
    :class:`~poptune.search.disk_full.TrialsHitFullDisk` (an OSError, ENOSPC).
    """
    _quiet_tune()
    exp_dir = check_experiment_dir(settings)
    wall_before = previous_wall_s(settings) if settings.resume else 0.0
    study_file = _study_file(settings)
    # The experiment's own optuna_study.db, also when a resumed experiment has moved.
    here = study_copy_of_this_run(study_file)
    with ray_session(settings.address, num_cpus=local_cpus) as cluster, here:
        autoscaling = None if cluster.local else find_autoscaling()
        capacity.check_fits(settings, cluster, autoscaling)
        # Only now, with the cluster joined and able to run trials, is an old experiment
        # replaced (--force): a failed connection must not cost the user their results.
        if exp_dir is not None:
            replace_experiment_dir(exp_dir, settings)
        elif settings.force:
            remote.delete(settings.experiment_uri)
        warning = local_storage_warning(
            settings,
            cluster.address,
            cluster.hosts,
            autoscaled=autoscaling.worker_types() if autoscaling else (),
        )
        if warning:
            print(f"poptune: warning: {warning}", file=sys.stderr, flush=True)
        # What is left of the budget from now: earlier runs of a resumed search spent the rest.
        deadline = None
        if settings.time_budget is not None:
            deadline = time.time() + max(0.0, settings.time_budget - wall_before)
        trainable = _trainable(settings, prepared, trainable, deadline=deadline)
        new_tuner = partial(
            _new_tuner, settings, trainable, cluster, autoscaling, study_file, callbacks
        )
        # poptune_search.json first: an experiment that has it can be resumed, from the very
        # start (its tuner.pkl is rebuilt from it if the driver stopped before Tune wrote one).
        # A resumed search keeps the wall it has spent, should it stop before it says more.
        write_search_file(settings, prepared, wall_s=wall_before if settings.resume else None)
        if on_saved is not None:
            on_saved()
        tuner = _restored_tuner(settings, trainable, new_tuner) if settings.resume else new_tuner()
        started = time.perf_counter()
        # Pre-emption (SIGTERM, SIGUSR1) saves state and stops, as on Ctrl-C; so does a full disk.
        with sigterm_as_sigint(), watching_the_disk() as disk:
            try:
                tuner.fit()
            except KeyboardInterrupt:
                # Without Tune's handler (TUNE_DISABLE_SIGINT_HANDLER=1) a full disk stops the
                # search as a plain KeyboardInterrupt: it is still a full disk.
                if disk.cause is None:
                    # A time budget goes on from the wall spent, not from scratch, on --resume.
                    spent = wall_before + time.perf_counter() - started
                    with contextlib.suppress(OSError):
                        write_search_file(settings, prepared, wall_s=spent)
                    raise
        wall_s = time.perf_counter() - started
    if disk.cause is not None:
        with contextlib.suppress(OSError):  # the disk may still be full: the old one stays whole
            write_search_file(settings, prepared, wall_s=wall_s + wall_before)
        raise TrialsHitFullDisk(disk.cause, errored=disk.errored)
    wall_s += wall_before
    write_search_file(settings, prepared, wall_s=wall_s)
    # Counted from the saved state: after an interrupt the returned grid calls stopped trials
    # TERMINATED, and trials never started are in neither.
    saved = saved_trial_counts(settings.experiment_uri)
    finished = saved.trials and saved.terminated + saved.errored == saved.trials
    if finished and exp_dir is not None:
        prune_checkpoints(exp_dir)
    elif finished:
        remote.prune_checkpoints_uri(settings.experiment_uri)
    if exp_dir is None and settings.study_storage is None:
        from poptune.storage.study_copy import save_remote_study

        save_remote_study(settings.experiment_uri, settings.name)
    # A spent time budget ends a search before num_samples, and that is no interruption: the
    # trials it never started are not owed. Otherwise every trial not finished is unfinished.
    budget_spent = settings.time_budget is not None and wall_s >= settings.time_budget
    return SearchOutcome(
        experiment=settings.experiment_uri,
        trials=saved.trials if budget_spent else max(settings.num_samples, saved.trials),
        terminated=saved.terminated,
        errored=saved.errored,
        wall_s=wall_s,
    )


def _new_tuner(
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
        tune_config=_tune_config(settings, max_concurrent=limit, study_file=study_file),
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
                *callbacks,
                # After poptune's callbacks: each of them sees a finished trial whole (Tune's own
                # loggers, appended after these, read only what is kept).
                FinishedTrials(),
            ],
            verbose=0,
        ),
    )


def _restored_tuner(
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


def _quiet_tune() -> None:
    """poptune prints one line per trial (TrialProgress); Tune's own boxes, tips and warnings
    about snapshot frequency (tiny checkpoints, taken every epoch on purpose) would bury them."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # legacy reporter: silent at verbose=0
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # After an interrupt, trials created just before it have no results yet: Tune warns about
    # each one when it reads the experiment back (on return and on --resume); nothing is wrong.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def _trainable(
    settings: SearchSettings,
    prepared: Prepared,
    swapped: Callable | None = None,
    *,
    deadline: float | None = None,
):
    # One factory for every trial (search/resources.py), not a dict that makes one each.
    resources = per_trial(settings.cpus_per_trial, settings.gpus_per_trial)
    if swapped is not None:
        return tune.with_resources(swapped, resources)
    trial = TrialSettings(
        max_epochs=settings.max_epochs,
        seed=settings.seed,
        threads=max(1, int(settings.cpus_per_trial)),
        use_gpu=settings.gpus_per_trial > 0,
        deadline=deadline,
    )
    # with_parameters puts the arrays in the object store once; trials read them zero-copy.
    # Only what training reads: no test rows, and no scaler whose unpickling imports sklearn.
    data = TrainingData.of(prepared)
    return tune.with_resources(
        tune.with_parameters(train_trial, prepared=data, settings=trial), resources
    )


def _tune_config(
    settings: SearchSettings, *, max_concurrent: int | None, study_file: StudyFile | None
) -> tune.TuneConfig:
    searcher = PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        points_to_evaluate=starting_points(settings.num_samples),
        sampler=_sampler(settings),
        storage=driver_study_storage(_study_storage(settings)),
        study_file=study_file,
        study_name=settings.name,
        max_epochs=settings.max_epochs,
        time_budget_s=settings.time_budget,
    )
    if settings.scheduler == "asha":
        scheduler = NewestFirstASHA(
            time_attr="training_iteration",
            max_t=settings.max_epochs,
            grace_period=min(settings.grace_period, settings.max_epochs),
            reduction_factor=3,
        )
    else:
        scheduler = NewestFirstFIFO()
    return tune.TuneConfig(
        metric=METRIC,
        mode=MODE,
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=settings.num_samples,
        max_concurrent_trials=max_concurrent,
        # One long-lived worker process per slot: no fresh interpreter and torch import per trial.
        reuse_actors=True,
        trial_dirname_creator=trial_dirname,
    )


def _sampler(settings: SearchSettings) -> optuna.samplers.BaseSampler:
    if settings.sampler == "random":  # a baseline to measure TPE against
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # constant_liar: trials running in parallel count as bad guesses until they report, so
    # parallel slots are not all sent to the same spot. The window bounds what a suggestion
    # costs in a long search, and once it is full a fit of TPE's model serves several
    # suggestions when many trials run (window.py and batch_tpe.py say what each trades).
    if not optuna_private.fast_paths():
        return optuna.samplers.TPESampler(
            seed=settings.seed, multivariate=True, group=True, constant_liar=True
        )
    return WindowedSampler(
        BatchTPESampler(
            seed=settings.seed,
            multivariate=True,
            group=True,
            constant_liar=True,
            batch_from=RECENT + BEST,
        )
    )


def starting_points(num_samples: int) -> list[dict]:
    """The first trials: the reference model (the bar the search must beat), then one sound
    config of each other family, so that TPE learns about every family from the start rather
    than piling onto the family of its first good draw. A quarter of the trials at most."""
    reference = {**REFERENCE.to_dict(), "weight_decay": WEIGHT_DECAY_RANGE[0]}
    points = [reference, *FAMILY_STARTS]
    return points[: max(1, min(len(points), num_samples // 4))]


def trial_dirname(trial) -> str:
    """`MLP2Layer_3f9a01c2`: what ran, readable in TensorBoard's run list."""
    return f"{trial.config.get('family', 'trial')}_{trial.trial_id}"


def _study_file(settings: SearchSettings) -> StudyFile | None:
    """Without --study-storage the study is kept in memory (poptune/search/study_file.py says
    why); a local experiment gets a copy as optuna_study.db at each save of the search."""
    if settings.study_storage is not None or not settings.storage_is_local:
        return None
    path = uri.local_path(settings.experiment_uri) / STUDY_FILE
    return StudyFile(f"sqlite:///{path}", settings.name)


def _study_storage(settings: SearchSettings) -> optuna.storages.BaseStorage | None:
    """--study-storage, opened; None (in memory) without it."""
    url = settings.study_storage
    if url is None:
        return None
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable DB
        raise UsageError(
            f"--study-storage {url!r}: cannot open it ({exc}); use a SQLAlchemy URL such as "
            "sqlite:///study.db or postgresql://user@host/db"
        ) from exc
