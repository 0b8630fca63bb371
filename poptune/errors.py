"""The few exceptions poptune raises on purpose.

The CLI maps :class:`UsageError` (and its subclasses) to exit code 2 with a one-line message; any
other exception is an internal error (exit 1). Messages name the bad value and the way out.
"""


class PoptuneError(Exception):
    """Base class of poptune's own errors."""


class UsageError(PoptuneError):
    """The user gave something poptune cannot work with: a bad option, file or setting."""


class DataError(UsageError):
    """A data file is unreadable, malformed or too small to use."""


class ExperimentError(UsageError):
    """An experiment directory is missing, incomplete or would be overwritten."""


class Interrupted(PoptuneError):
    """Ctrl-C, SIGTERM or SIGUSR1 stopped a command; what it had written is whole.

    ``experiment`` is the experiment's location. ``saved`` is False when the search stopped
    before it wrote anything (there is nothing to resume then: run it again); otherwise the
    message ends with the command that continues the job.
    """

    def __init__(self, message: str, experiment: str, *, saved: bool = True) -> None:
        super().__init__(message)
        self.experiment = experiment
        self.saved = saved


class SearchInterrupted(Interrupted):
    """The search was stopped (Ctrl-C, SIGTERM) with trials unfinished; the experiment is saved.

    ``experiment`` is its location; continue it with the same settings and ``resume=True``
    (``poptune search --resume``). The message says how.
    """


class AnalysisInterrupted(Interrupted):
    """The analysis was stopped; the search it analyzes is complete. The message says how to
    finish the analysis (``poptune analyze``)."""


class DiskFull(PoptuneError):
    """The disk under the experiment (or the analysis's output) is full, or a quota there is
    spent: the command stopped with every file it wrote whole, and the experiment saved as of
    its last complete write. The message names the folder and the command that continues the
    job once space is freed; ``saved`` is False when the search could not write its first file
    (then the same command starts it again)."""

    def __init__(self, message: str, experiment: str, *, saved: bool = True) -> None:
        super().__init__(message)
        self.experiment = experiment
        self.saved = saved
