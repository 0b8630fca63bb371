"""poptune from Python: search, analyze, run (both) and load, the calls the CLI makes too.

Each takes the settings objects the command line builds (:class:`SearchSettings`,
:class:`AnalyzeSettings`) and returns an :class:`~poptune.experiment.Experiment`. Nothing here
exits the process or prints anything but progress lines; a bad setting, file or experiment
raises :class:`~poptune.errors.UsageError` (or one of its subclasses), an interrupted search
:class:`~poptune.errors.SearchInterrupted` (an interrupted analysis
:class:`~poptune.errors.AnalysisInterrupted`), a full disk :class:`~poptune.errors.DiskFull`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from poptune import continuing, uri
from poptune.driver.disk_full import is_disk_full
from poptune.errors import ExperimentError
from poptune.experiment import Experiment, load, open_experiment
from poptune.layout import ANALYSIS_DIR, BEST_CONFIG_FILE, SEARCH_FILE
from poptune.options import changed_fields
from poptune.preflight import preflight, require_tracking
from poptune.process_state import keeps_process_state
from poptune.storage.location import ExperimentLocation

if TYPE_CHECKING:
    from poptune.analysis.settings import AnalyzeSettings
    from poptune.driver.settings import SearchSettings

Log = Callable[[str], None]

__all__ = ["Experiment", "analyze", "load", "preflight", "run", "search"]


def _progress(message: str) -> None:
    print(f"poptune: {message}", flush=True)


@keeps_process_state
def search(
    settings: SearchSettings, *, log: Log | None = None, given: Collection[str] | None = None
) -> Experiment:
    """Run (or with ``settings.resume``, continue) a search; return the experiment.

    ``log`` receives the progress lines (default: printed, ``poptune: `` first); the trials' own
    lines come from the search itself. ``given`` names the settings the caller chose, which a
    resumed search must not change (default: those that differ from SearchSettings' defaults).
    Raises :class:`SearchInterrupted` when Ctrl-C, SIGTERM or SIGUSR1 stopped the search, and
    :class:`DiskFull` when the experiment's disk filled up; both say how to continue.
    """
    return _search(settings, log or _progress, given, analysis=None)


def _search(
    settings: SearchSettings,
    say: Log,
    given: Collection[str] | None,
    *,
    analysis: AnalyzeSettings | None,
) -> Experiment:
    """:func:`search`; ``analysis``: the analysis of `poptune run` that follows it, which the
    command that continues an interrupted search must run too."""
    saved = [settings.resume]  # once true, --resume continues the search
    try:
        return _searched(settings, say, given, on_saved=lambda: saved.append(True))
    except KeyboardInterrupt:
        # Outside Tune's fit (Tune handles a first Ctrl-C there itself): loading the data,
        # starting Ray, or writing the search's last files.
        raise continuing.search_interrupted(settings, analysis, saved=saved[-1]) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise continuing.search_disk_full(settings, analysis, exc, saved=saved[-1]) from exc


def _searched(
    settings: SearchSettings, say: Log, given: Collection[str] | None, on_saved: Callable[[], None]
) -> Experiment:
    # Settings, then data, then the heavy imports (torch, Ray, the analysis stack): a bad option
    # or a bad file is answered in a second or two, not after everything has loaded.
    from poptune.data import load_source, prepare
    from poptune.driver.resume import resumed_settings

    preflight(settings)
    expect_sha256 = None
    if settings.resume:  # the experiment's own settings and data, not this call's defaults
        explicit = changed_fields(settings) if given is None else given
        settings, expect_sha256 = resumed_settings(settings, explicit=explicit)
        require_tracking(settings)
    say(f"loading {settings.data.describe()}")
    frame = load_source(settings.data, expect_sha256=expect_sha256)
    say(frame.attrs["load_report"].summary())
    prepared = prepare(frame, seed=settings.seed, dedupe=settings.dedupe)
    info = prepared.info
    say(
        f"{info.rows_used:,} rows after dedupe ({info.duplicates_dropped:,} duplicate "
        f"track rows dropped); split {info.train:,}/{info.val:,}/{info.test:,}"
    )
    from poptune.driver.runner import run_search

    say(f"{_what_runs(settings)} into {uri.shown(settings.experiment_uri)}")
    from poptune.tracking import tracking_callbacks

    outcome = run_search(
        settings, prepared, callbacks=tracking_callbacks(settings), on_saved=on_saved
    )
    say(
        f"search done in {outcome.wall_s:.0f} s: {outcome.terminated} finished, "
        f"{outcome.errored} errored, {outcome.unfinished} unfinished"
    )
    if settings.mlflow_tracking_uri:
        from poptune.tracking import log_search_end

        counts = {"trials": outcome.trials, "terminated": outcome.terminated,
                  "errored": outcome.errored, "unfinished": outcome.unfinished,
                  "wall_s": outcome.wall_s}  # fmt: skip
        log_search_end(settings.mlflow_tracking_uri, settings.name, counts)
    if outcome.unfinished:
        # Tune stopped on a signal (its own graceful stop, state saved): answered in _search as
        # an interrupt at any other phase is.
        raise KeyboardInterrupt
    if outcome.best_config is None:
        outcome.results.best()  # no trial with a finite result: raises the error that says so
    location = settings.location
    say(f"best config written to {outcome.best_config}")
    if not location.is_remote:
        say(f"inspect the trials with: tensorboard --logdir {location.where}")
    search = location.read_json(SEARCH_FILE)
    return open_experiment(location.where, search=search, results=outcome.results)


@keeps_process_state
def analyze(
    location: str | Path, settings: AnalyzeSettings | None = None, *, log: Log | None = None
) -> Experiment:
    """Re-evaluate the finalists of the experiment at ``location`` (a folder or an s3://, gs://
    URI), choose and score the winner and the baselines, write ``analysis/``; return the
    experiment with its ``metrics``. ``log`` receives the progress lines (default: printed).
    Raises :class:`AnalysisInterrupted` on Ctrl-C, SIGTERM or SIGUSR1, :class:`DiskFull` when
    the disk it writes to is full; both say how to finish the analysis."""
    from poptune.analysis.settings import AnalyzeSettings

    return _analyze(str(location), settings or AnalyzeSettings(), log or print)


@keeps_process_state
def run(
    settings: SearchSettings,
    analyze: AnalyzeSettings | None = None,
    *,
    log: Log | None = None,
    given: Collection[str] | None = None,
) -> Experiment:
    """Search, then analyze: :func:`search` followed by :func:`analyze` of its experiment. An
    interrupted search's resume command is `poptune run … --resume`, which analyzes too."""
    from poptune.analysis.settings import AnalyzeSettings

    analysis = analyze or AnalyzeSettings()
    experiment = _search(settings, log or _progress, given, analysis=analysis)
    return _analyze(experiment.location, analysis, log or print)


def _what_runs(settings: SearchSettings) -> str:
    """``searching 24 trials × up to 12 epochs (asha)``, or until the time budget is spent (on a
    resume, with what is left of it): the trial cap a budget runs under is not a number to show."""
    from poptune.driver.settings import BUDGET_SAMPLE_CAP

    verb = "resuming" if settings.resume else "searching"
    epochs = f"up to {settings.max_epochs} epochs ({settings.scheduler})"
    budget = settings.time_budget
    if budget is None or settings.num_samples < BUDGET_SAMPLE_CAP:
        trials = f"{settings.num_samples} trials × {epochs}"
        return f"{verb} {trials}" + (f", for at most {budget:g} s" if budget else "")
    if not settings.resume:
        return f"{verb} trials of {epochs} until the time budget of {budget:g} s is spent"
    from poptune.driver.experiment_files import previous_wall_s

    left = max(0.0, budget - previous_wall_s(settings))
    return (
        f"{verb} trials of {epochs} until the time budget is spent ({left:.0f} s of "
        f"{budget:g} s left)"
    )


# ----------------------------------------------------------------------------- analysis


def _analyze(location: str, settings: AnalyzeSettings, log: Log) -> Experiment:
    """The analysis of ``location``; interrupted or short of disk, it says how to finish."""
    try:
        return _analyzed(location, settings, log)
    except KeyboardInterrupt:
        raise continuing.analysis_interrupted(location, settings) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise continuing.analysis_disk_full(location, settings, exc) from exc


def _analyzed(location: str, settings: AnalyzeSettings, log: Log) -> Experiment:
    from poptune.analysis.analyze import analyze as analyze_folder
    from poptune.analysis.analyze import load_search_meta
    from poptune.tracking import log_analysis_to_mlflow

    where = ExperimentLocation.of(location)
    # A bucket experiment is analysed in a local copy, and what the analysis wrote uploaded.
    folder = where.local_copy() if where.is_remote else where.local_dir
    if where.is_remote:
        try:
            copied = where.download(folder)
        except FileNotFoundError:
            raise ExperimentError(
                f"{where.shown()}: no such experiment; pass <storage>/<name>"
            ) from None
        log(f"copied {copied} file(s) of {where.shown()} to {folder} (checkpoints left out)")
    metrics = analyze_folder(folder, settings, log=log)
    if where.is_remote:
        where.upload(folder / BEST_CONFIG_FILE, BEST_CONFIG_FILE)
        uploaded = BEST_CONFIG_FILE
        if settings.out is None:  # an --out folder of the user's own stays where they put it
            where.upload(folder / ANALYSIS_DIR, ANALYSIS_DIR)
            uploaded = f"{ANALYSIS_DIR}/ and {BEST_CONFIG_FILE}"
        log(f"uploaded {uploaded} to {where.shown()}")
    meta = load_search_meta(folder)
    log_analysis_to_mlflow(meta, metrics, folder, settings, log)
    # The metrics an Experiment shows are those of the experiment's own analysis/: this
    # analysis's, unless --out sent it elsewhere (then the experiment's are read as they are).
    shown = {"metrics": metrics} if settings.out is None else {}
    return open_experiment(location, search=meta, **shown)
