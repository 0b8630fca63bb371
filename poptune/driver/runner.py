"""The search itself: Tuner + OptunaSearch (TPE) + ASHA over the define-by-run space."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import optuna
from ray import tune

from poptune.analysis.results import SearchResults, read_results
from poptune.cluster import capacity
from poptune.cluster.autoscale import find_autoscaling
from poptune.cluster.session import ray_session
from poptune.cluster.storage import local_storage_warning
from poptune.data import Prepared
from poptune.driver.disk_full import TrialsHitFullDisk, watching_the_disk
from poptune.driver.experiment_files import (
    check_experiment,
    previous_wall_s,
    replace_experiment,
    write_best_config,
    write_search_file,
)
from poptune.driver.resume import (
    saved_trial_counts,
)
from poptune.driver.searcher import study_copy_of_this_run
from poptune.driver.settings import SearchSettings
from poptune.driver.signals import sigterm_as_sigint
from poptune.driver.tune_config import study_file_for, trainable_for
from poptune.driver.tuner import new_tuner, restored_tuner


@dataclass(frozen=True)
class SearchOutcome:
    """A search's trial counts and wall; for a search that ran to its end, where its
    best_config.json is and the results it was chosen from (None after an interrupt)."""

    experiment: str
    trials: int
    terminated: int
    errored: int
    wall_s: float
    best_config: str | None = None
    results: SearchResults | None = None

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
    A search that runs to its end (every trial finished, or the time budget spent) leaves
    best_config.json of its best trial in the experiment, unless no trial reported a finite
    result (then ``best_config`` is None).

    A full disk under the experiment stops the search as Ctrl-C does, and then this raises
    :class:`~poptune.driver.disk_full.TrialsHitFullDisk` (an OSError, ENOSPC).
    """
    _quiet_tune()
    location = check_experiment(settings)
    wall_before = previous_wall_s(settings) if settings.resume else 0.0
    study_file = study_file_for(settings)
    # The experiment's own optuna_study.db, also when a resumed experiment has moved.
    here = study_copy_of_this_run(study_file)
    with ray_session(settings.address, num_cpus=local_cpus) as cluster, here:
        autoscaling = None if cluster.local else find_autoscaling()
        capacity.check_fits(settings, cluster, autoscaling)
        # Only now, with the cluster joined and able to run trials, is an old experiment
        # replaced (--force): a failed connection must not cost the user their results.
        replace_experiment(location, settings)
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
        trainable = trainable_for(settings, prepared, trainable, deadline=deadline)
        fresh = partial(new_tuner, settings, trainable, cluster, autoscaling, study_file, callbacks)
        # poptune_search.json first: an experiment that has it can be resumed, from the very
        # start (its tuner.pkl is rebuilt from it if the driver stopped before Tune wrote one).
        # A resumed search keeps the wall it has spent, should it stop before it says more.
        write_search_file(settings, prepared, wall_s=wall_before if settings.resume else None)
        if on_saved is not None:
            on_saved()
        tuner = restored_tuner(settings, trainable, fresh) if settings.resume else fresh()
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
    if saved.trials and saved.terminated + saved.errored == saved.trials:
        location.prune_checkpoints()
    # A local experiment's study copy is written as the search runs (studies/study_file.py).
    if location.is_remote and settings.study_storage is None:
        from poptune.studies.remote_copy import save_remote_study

        save_remote_study(settings.experiment_uri, settings.name)
    # A spent time budget ends a search before num_samples, and that is no interruption: the
    # trials it never started are not owed. Otherwise every trial not finished is unfinished.
    budget_spent = settings.time_budget is not None and wall_s >= settings.time_budget
    outcome = SearchOutcome(
        experiment=settings.experiment_uri,
        trials=saved.trials if budget_spent else max(settings.num_samples, saved.trials),
        terminated=saved.terminated,
        errored=saved.errored,
        wall_s=wall_s,
    )
    if outcome.unfinished:  # stopped on a signal: the caller says how to continue
        return outcome
    results = read_results(location.where)
    # No trial with a finite result has no best config: the caller says so, after its summary.
    best_config = write_best_config(settings, results) if results.ranked() else None
    return dataclasses.replace(outcome, best_config=best_config, results=results)


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
