"""What an interrupted, or disk-starved, command says: the error that carries the command which
picks up where it stopped (`poptune search … --resume`, `poptune run … --resume` with the
analysis's options, `poptune analyze …`)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from poptune import uri
from poptune.driver.disk_full import disk_full_cause
from poptune.errors import AnalysisInterrupted, DiskFull, SearchInterrupted
from poptune.layout import ANALYSIS_DIR

if TYPE_CHECKING:
    from poptune.analysis.settings import AnalyzeSettings
    from poptune.driver.settings import SearchSettings


def search_interrupted(
    settings: SearchSettings, analysis: AnalyzeSettings | None, *, saved: bool
) -> SearchInterrupted:
    """Ctrl-C, SIGTERM or SIGUSR1 stopped the search; ``saved``: its experiment can be resumed
    (``analysis``: the analysis of `poptune run` that the resume must run too)."""
    if not saved:
        return SearchInterrupted(
            "interrupted before the search started; nothing was saved",
            experiment=settings.experiment_uri,
            saved=False,
        )
    return SearchInterrupted(
        "interrupted; the experiment is saved. Resume it with:\n"
        f"  {continue_search(settings, analysis)}",
        experiment=settings.experiment_uri,
    )


def search_disk_full(
    settings: SearchSettings, analysis: AnalyzeSettings | None, exc: OSError, *, saved: bool
) -> DiskFull:
    """The experiment's disk filled up during the search (``exc`` says so)."""
    where = f"{uri.shown(settings.experiment_uri)}: the disk is full ({_why(exc)})"
    if not saved:
        return DiskFull(
            f"{where}; the search could not start (nothing was saved). Free space there, "
            "then start it again",
            experiment=settings.experiment_uri,
            saved=False,
        )
    command = continue_search(settings, analysis)
    if getattr(exc, "errored", 0):  # trials it failed for good (--max-failures 0)
        command += " --retry-errored"
    return DiskFull(
        f"{where}; the search stopped with the experiment saved as of its last complete "
        f"write. Free space there, then resume with: {command}",
        experiment=settings.experiment_uri,
    )


def analysis_interrupted(location: str, settings: AnalyzeSettings) -> AnalysisInterrupted:
    return AnalysisInterrupted(
        "interrupted; the search is complete. Finish the analysis with:\n"
        f"  {continue_analysis(location, settings)}",
        experiment=location,
    )


def analysis_disk_full(location: str, settings: AnalyzeSettings, exc: OSError) -> DiskFull:
    out = settings.out or uri.join(location, ANALYSIS_DIR)
    return DiskFull(
        f"{uri.shown(out)}: the disk is full ({_why(exc)}); the analysis stopped (the search "
        "is complete, and every file written is whole). Free space there, then resume "
        f"with: {continue_analysis(location, settings)}",
        experiment=location,
    )


def continue_search(settings: SearchSettings, analysis: AnalyzeSettings | None) -> str:
    """The command that continues the search (`poptune run`'s with its analysis after it)."""
    command = ["poptune", "search" if analysis is None else "run", "--storage", settings.storage,
               "--name", settings.name, "--resume"]  # fmt: skip
    if settings.address:
        command += ["--address", settings.address]
    if analysis is not None:
        command += analysis_flags(analysis, with_data=False)
    return shlex.join(command)


def analysis_flags(settings: AnalyzeSettings, *, with_data: bool) -> list[str]:
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


def continue_analysis(location: str, settings: AnalyzeSettings) -> str:
    return shlex.join(["poptune", "analyze", location, *analysis_flags(settings, with_data=True)])
