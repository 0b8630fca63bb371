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


class SearchInterrupted(PoptuneError):
    """The search was stopped (Ctrl-C, SIGTERM) with trials unfinished; the experiment is saved.

    ``experiment`` is its location; continue it with the same settings and ``resume=True``
    (``poptune search --resume``). The message says how.
    """

    def __init__(self, message: str, experiment: str) -> None:
        super().__init__(message)
        self.experiment = experiment
