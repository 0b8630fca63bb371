"""What Tune runs in a search: the trainable with its resources and data, the searcher (TPE over
the define-by-run space, its first trials, the study it keeps), and the scheduler."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from ray import tune

from poptune import uri
from poptune.compat import optuna_compat
from poptune.data import Prepared
from poptune.driver.resources import per_trial
from poptune.driver.scheduling import NewestFirstASHA, NewestFirstFIFO
from poptune.driver.searcher import PoptuneOptunaSearch
from poptune.driver.settings import SearchSettings
from poptune.errors import UsageError
from poptune.layout import STUDY_FILE
from poptune.metric import METRIC, MODE
from poptune.samplers.batch_tpe import BatchTPESampler
from poptune.samplers.window import BEST, RECENT, WindowedSampler
from poptune.spaces import FAMILY_STARTS, WEIGHT_DECAY_RANGE, define_space
from poptune.studies.database import driver_study_storage
from poptune.studies.study_file import StudyFile
from poptune.trainables.config import REFERENCE
from poptune.trainables.splits import TrainingData
from poptune.trainables.trainable import TrialSettings, train_trial


def trainable_for(
    settings: SearchSettings,
    prepared: Prepared,
    swapped: Callable | None = None,
    *,
    deadline: float | None = None,
) -> Callable:
    """poptune's trial function (or ``swapped``, a benchmark's stand-in) with each trial's
    resources and the training data attached; ``deadline``: the time budget's end, in epoch
    seconds, after which a trial stops at its next epoch."""
    # One factory for every trial (driver/resources.py), not a dict that makes one each.
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


def tune_config(
    settings: SearchSettings, *, max_concurrent: int | None, study_file: StudyFile | None
) -> tune.TuneConfig:
    """The searcher (TPE over the define-by-run space, first trials, the study), the scheduler
    and the trial count of a search."""
    searcher = PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        points_to_evaluate=starting_points(settings.num_samples),
        sampler=sampler_for(settings),
        storage=driver_study_storage(study_storage_for(settings)),
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


def sampler_for(settings: SearchSettings) -> optuna.samplers.BaseSampler:
    if settings.sampler == "random":  # a baseline to measure TPE against
        return optuna.samplers.RandomSampler(seed=settings.seed)
    # constant_liar: trials running in parallel count as bad guesses until they report, so
    # parallel slots are not all sent to the same spot. The window bounds what a suggestion
    # costs in a long search, and once it is full a fit of TPE's model serves several
    # suggestions when many trials run (window.py and batch_tpe.py say what each trades).
    if not optuna_compat.fast_paths():
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


def study_file_for(settings: SearchSettings) -> StudyFile | None:
    """Without --study-storage the study is kept in memory (poptune/studies/study_file.py says
    why); a local experiment gets a copy as optuna_study.db at each save of the search."""
    if settings.study_storage is not None or not settings.storage_is_local:
        return None
    path = uri.local_path(settings.experiment_uri) / STUDY_FILE
    return StudyFile(f"sqlite:///{path}", settings.name)


def study_storage_for(settings: SearchSettings) -> optuna.storages.BaseStorage | None:
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
