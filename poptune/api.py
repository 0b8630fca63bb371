"""poptune from Python: search, analyze, run (both) and load, the calls the CLI makes too.

Each takes the settings objects the command line builds (:class:`SearchSettings`,
:class:`AnalyzeSettings`) and returns an :class:`~poptune.experiment.Experiment`. Nothing here
exits the process or prints anything but progress lines; a bad setting, file or experiment
raises :class:`~poptune.errors.UsageError` (or one of its subclasses), an interrupted search
:class:`~poptune.errors.SearchInterrupted` (an interrupted analysis
:class:`~poptune.errors.AnalysisInterrupted`), a full disk :class:`~poptune.errors.DiskFull`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poptune import uri
from poptune.cluster import capacity
from poptune.cluster.capacity import ClusterInfo
from poptune.errors import (
    AnalysisInterrupted,
    DiskFull,
    ExperimentError,
    SearchInterrupted,
    UsageError,
)
from poptune.experiment import Experiment, load, open_experiment
from poptune.layout import (
    ANALYSIS_DIR,
    BEST_CONFIG_FILE,
    METRICS_FILE,
    REPORT_HTML_FILE,
    SEARCH_FILE,
)
from poptune.options import changed_fields
from poptune.process_state import keeps_process_state
from poptune.search.disk_full import disk_full_cause, is_disk_full

if TYPE_CHECKING:
    from poptune.analysis.settings import AnalyzeSettings
    from poptune.search.settings import SearchSettings

Log = Callable[[str], None]
CACHE_ENV = "POPTUNE_CACHE_DIR"  # where remote experiments are copied for analysis

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
        if not saved[-1]:
            raise SearchInterrupted(
                "interrupted before the search started; nothing was saved",
                experiment=settings.experiment_uri,
                saved=False,
            ) from None
        raise _search_interrupted(settings, analysis) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        where = f"{uri.shown(settings.experiment_uri)}: the disk is full ({_why(exc)})"
        if not saved[-1]:
            raise DiskFull(
                f"{where}; the search could not start (nothing was saved). Free space there, "
                "then start it again",
                experiment=settings.experiment_uri,
                saved=False,
            ) from exc
        command = _continue_search(settings, analysis)
        if getattr(exc, "errored", 0):  # trials it failed for good (--max-failures 0)
            command += " --retry-errored"
        raise DiskFull(
            f"{where}; the search stopped with the experiment saved as of its last complete "
            f"write. Free space there, then resume with: {command}",
            experiment=settings.experiment_uri,
        ) from exc


def _searched(
    settings: SearchSettings, say: Log, given: Collection[str] | None, on_saved: Callable[[], None]
) -> Experiment:
    # Settings, then data, then the heavy imports (torch, Ray, the analysis stack): a bad option
    # or a bad file is answered in a second or two, not after everything has loaded.
    from poptune.data import load_source, prepare
    from poptune.search.resume import resumed_settings

    preflight(settings)
    expect_sha256 = None
    if settings.resume:  # the experiment's own settings and data, not this call's defaults
        explicit = changed_fields(settings) if given is None else given
        settings, expect_sha256 = resumed_settings(settings, explicit=explicit)
        _require_tracking(settings)
    say(f"loading {settings.data.describe()}")
    frame = load_source(settings.data, expect_sha256=expect_sha256)
    say(frame.attrs["load_report"].summary())
    prepared = prepare(frame, seed=settings.seed, dedupe=settings.dedupe)
    info = prepared.info
    say(
        f"{info.rows_used:,} rows after dedupe ({info.duplicates_dropped:,} duplicate "
        f"track rows dropped); split {info.train:,}/{info.val:,}/{info.test:,}"
    )
    from poptune.analysis.export import best_config_document
    from poptune.analysis.results import read_results
    from poptune.search.runner import run_search

    say(f"{_what_runs(settings)} into {uri.shown(settings.experiment_uri)}")
    outcome = run_search(
        settings, prepared, callbacks=_tracking_callbacks(settings), on_saved=on_saved
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
    location = _location(settings.experiment_uri)
    results = read_results(location)
    meta = _search_meta(location)
    document = best_config_document(results.best(), meta)
    best_file = _write_json(location, BEST_CONFIG_FILE, document)
    say(f"best config written to {best_file}")
    if not uri.is_remote(location):
        say(f"inspect the trials with: tensorboard --logdir {location}")
    return open_experiment(location, search=meta, results=results)


def _search_interrupted(
    settings: SearchSettings, analysis: AnalyzeSettings | None
) -> SearchInterrupted:
    return SearchInterrupted(
        "interrupted; the experiment is saved. Resume it with:\n"
        f"  {_continue_search(settings, analysis)}",
        experiment=settings.experiment_uri,
    )


def _continue_search(settings: SearchSettings, analysis: AnalyzeSettings | None) -> str:
    """The command that continues the search (`poptune run`'s with its analysis after it)."""
    command = ["poptune", "search" if analysis is None else "run", "--storage", settings.storage,
               "--name", settings.name, "--resume"]  # fmt: skip
    if settings.address:
        command += ["--address", settings.address]
    if analysis is not None:
        command += _analysis_flags(analysis, with_data=False)
    return shlex.join(command)


def _analysis_flags(settings: AnalyzeSettings, *, with_data: bool) -> list[str]:
    """The analysis options that differ from their defaults, as flags."""
    from poptune.options import options_of

    default = type(settings)()
    flags = []
    for option in options_of(type(settings)):
        value = getattr(settings, option.name)
        if (option.name != "data" or with_data) and value != getattr(default, option.name):
            flags += [option.flag, str(value)]
    return flags


def _why(exc: OSError) -> str:
    cause = disk_full_cause(exc) or exc
    return cause.strerror or str(cause)


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


def preflight(settings: SearchSettings) -> None:
    """Refuse what cannot run before any slow work: no data loaded, no Ray started.

    Gross mistakes only; the exact checks against the cluster Ray reports still run in
    `run_search`. Each check here can only refuse what that later check would refuse too.
    """
    _require_tracking(settings)
    _require_storage_folder(settings.storage)
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        from poptune.cluster.session import _check_reachable

        _check_reachable(address)  # a closed port: one line now, not after loading the data
        return
    # A private local Ray gets at most this machine's CPUs (fewer under a cgroup quota), and
    # the GPUs torch can use (whatever Ray would detect); torch is imported only to count them.
    gpus = 0
    if settings.gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
    machine = ClusterInfo(address=None, cpus=os.cpu_count() or 1, gpus=gpus, nodes=1)
    capacity.check_fits(settings, machine)


def _what_runs(settings: SearchSettings) -> str:
    """``searching 24 trials × up to 12 epochs (asha)``, or until the time budget is spent (on a
    resume, with what is left of it): the trial cap a budget runs under is not a number to show."""
    from poptune.search.settings import BUDGET_SAMPLE_CAP

    verb = "resuming" if settings.resume else "searching"
    epochs = f"up to {settings.max_epochs} epochs ({settings.scheduler})"
    budget = settings.time_budget
    if budget is None or settings.num_samples < BUDGET_SAMPLE_CAP:
        trials = f"{settings.num_samples} trials × {epochs}"
        return f"{verb} {trials}" + (f", for at most {budget:g} s" if budget else "")
    if not settings.resume:
        return f"{verb} trials of {epochs} until the time budget of {budget:g} s is spent"
    from poptune.search.experiment_files import previous_wall_s

    left = max(0.0, budget - previous_wall_s(settings))
    return (
        f"{verb} trials of {epochs} until the time budget is spent ({left:.0f} s of "
        f"{budget:g} s left)"
    )


def _require_storage_folder(storage: str) -> None:
    """A local --storage must be a folder, or a path where one can be made: a file there (or
    above it) would fail only when the search first writes, as an internal error."""
    if uri.is_remote(storage):
        return
    path = uri.local_path(storage).expanduser()
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                where = "is a file" if place == path else f"is inside {place}, a file"
                raise UsageError(
                    f"--storage {storage}: {where}, not a folder; pass a folder (it is created "
                    "if missing) or a URI such as s3://bucket/runs"
                )
            return


# ----------------------------------------------------------------------------- analysis


def _analyze(location: str, settings: AnalyzeSettings, log: Log) -> Experiment:
    """The analysis of ``location``; interrupted or short of disk, it says how to finish."""
    try:
        return _analyzed(location, settings, log)
    except KeyboardInterrupt:
        raise AnalysisInterrupted(
            "interrupted; the search is complete. Finish the analysis with:\n"
            f"  {_continue_analysis(location, settings)}",
            experiment=location,
        ) from None
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        out = settings.out or uri.join(location, ANALYSIS_DIR)
        raise DiskFull(
            f"{uri.shown(out)}: the disk is full ({_why(exc)}); the analysis stopped (the search "
            "is complete, and every file written is whole). Free space there, then resume "
            f"with: {_continue_analysis(location, settings)}",
            experiment=location,
        ) from exc


def _continue_analysis(location: str, settings: AnalyzeSettings) -> str:
    return shlex.join(["poptune", "analyze", location, *_analysis_flags(settings, with_data=True)])


def _analyzed(location: str, settings: AnalyzeSettings, log: Log) -> Experiment:
    from poptune.analysis.analyze import analyze as analyze_folder
    from poptune.analysis.analyze import load_search_meta

    remote = uri.is_remote(location)  # then analyzed in a local copy, and the results uploaded
    folder = local_copy(location) if remote else uri.local_path(location)
    if remote:
        from poptune.storage.remote import download_experiment, upload

        try:
            copied = download_experiment(location, folder)
        except FileNotFoundError:
            raise ExperimentError(
                f"{uri.shown(location)}: no such experiment; pass <storage>/<name>"
            ) from None
        log(f"copied {copied} file(s) of {uri.shown(location)} to {folder} (checkpoints left out)")
    metrics = analyze_folder(folder, settings, log=log)
    if remote:
        upload(folder / BEST_CONFIG_FILE, uri.join(location, BEST_CONFIG_FILE))
        uploaded = BEST_CONFIG_FILE
        if settings.out is None:  # an --out folder of the user's own stays where they put it
            upload(folder / ANALYSIS_DIR, uri.join(location, ANALYSIS_DIR))
            uploaded = f"{ANALYSIS_DIR}/ and {BEST_CONFIG_FILE}"
        log(f"uploaded {uploaded} to {uri.shown(location)}")
    meta = load_search_meta(folder)
    _log_to_mlflow(meta, metrics, folder, settings, log)
    # The metrics an Experiment shows are those of the experiment's own analysis/: this
    # analysis's, unless --out sent it elsewhere (then the experiment's are read as they are).
    shown = {"metrics": metrics} if settings.out is None else {}
    return open_experiment(location, search=meta, **shown)


def local_copy(location: str) -> Path:
    """The folder a remote experiment is copied into for analysis: one per location, under
    $POPTUNE_CACHE_DIR (default: $XDG_CACHE_HOME/poptune, i.e. ~/.cache/poptune)."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "poptune")
    scheme, _, rest = uri.strip_query(location).partition("://")
    parts = [p for p in rest.split("/") if p not in ("", ".", "..")]
    return Path(root).expanduser().joinpath("experiments", scheme, *parts)


def _log_to_mlflow(
    meta: dict[str, Any], metrics: dict, folder: Path, settings: AnalyzeSettings, log: Log
) -> None:
    tracking_uri = meta["settings"].get("mlflow_tracking_uri")
    if not tracking_uri:
        return
    from poptune import tracking

    if not tracking.mlflow_available():
        log(
            f"note: the search logged to MLflow at {tracking_uri}, but MLflow is not installed "
            f"here, so this analysis is not logged there ({tracking.INSTALL_HINT})"
        )
        return
    out = Path(settings.out) if settings.out else folder / ANALYSIS_DIR
    files = [out / REPORT_HTML_FILE, out / METRICS_FILE, folder / BEST_CONFIG_FILE]
    tracking.log_analysis(tracking_uri, meta["settings"]["name"], metrics, files, log=log)


# ----------------------------------------------------------------------------- helpers


def _require_tracking(settings: SearchSettings) -> None:
    if settings.mlflow_tracking_uri:
        from poptune.tracking import require_mlflow

        require_mlflow(settings.mlflow_tracking_uri)


def _tracking_callbacks(settings: SearchSettings) -> list:
    """Tune callbacks for a new search (a resumed one brings its own, saved with it)."""
    if not settings.mlflow_tracking_uri or settings.resume:
        return []
    from poptune.tracking.callback import TrialRuns

    return [
        TrialRuns(settings.mlflow_tracking_uri, experiment_name=settings.name,
                  settings=settings.to_dict())
    ]  # fmt: skip


def _location(experiment_uri: str) -> str:
    """A local experiment as a plain path, a remote one as its URI."""
    return experiment_uri if uri.is_remote(experiment_uri) else str(uri.local_path(experiment_uri))


def _search_meta(location: str) -> dict[str, Any]:
    if uri.is_remote(location):
        from poptune.storage.remote import read_json_uri

        return read_json_uri(uri.join(location, SEARCH_FILE))
    from poptune.analysis.analyze import load_search_meta

    return load_search_meta(Path(location))


def _write_json(location: str, name: str, document: dict) -> str:
    """Write ``document`` as ``name`` in the experiment; return where, as messages show it."""
    if uri.is_remote(location):
        from poptune.storage.remote import write_json_uri

        write_json_uri(uri.join(location, name), document)
        return uri.shown(uri.join(location, name))
    from poptune.files import write_json_atomic

    return str(write_json_atomic(Path(location) / name, document))
