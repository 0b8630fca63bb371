"""A full disk under the experiment stops the search as Ctrl-C does, with its state saved.

A trial whose checkpoint cannot be written (ENOSPC, or EDQUOT: a quota is a full disk too) fails
in its worker, and Tune's answer to a failed trial is to retry it, up to --max-failures times,
and then to start the next trial: every trial after the disk filled would fail the same way,
each after its retries, and the search would end with all of them errored and nothing to resume
but errors. A full disk is no fault of the trial's, and no retry helps until space is freed:
so the first trial failure caused by it stops the search through Tune's graceful stop (the
trials are saved resumable, the failed one from its last checkpoint), that failure is not
counted against the trial's --max-failures, and the driver exits with the resume command
(:class:`poptune.errors.DiskFull`). Files are never left cut short meanwhile: Tune writes a
local experiment through :mod:`poptune.storage.atomic_fs`, poptune through
:mod:`poptune.files`; a write that finds no room leaves the previous version whole.

Ray logs each of these failures with a traceback (the trial's, every failed state sync), and
Tune ends an interrupted run with its own way to resume it (``Tuner.restore(...)``, for Python);
while a search runs, those records are left out, since poptune says once, in one line, what
happened and which command continues.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poptune.driver.signals import stop_like_ctrl_c

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How the errors read in text (Tune's error files, Ray's log lines), and what each means.
_TEXTS = {
    text: os.strerror(code)
    for code in DISK_FULL_ERRNOS
    for text in (os.strerror(code), f"[Errno {code}]")
}
# Ray's loggers whose records a full disk fills with tracebacks.
_RAY_LOGGERS = (
    "ray.tune.execution.tune_controller",  # "Trial task failed for trial …"
    "ray.tune.execution.experiment_state",  # "Saving experiment state to storage … failed"
    "ray.tune.tune",  # "Experiment state snapshotting failed"
    "ray.train._internal.syncer",  # "Last sync command failed …"
)
# What Tune says at the end of an interrupted (or partly errored) run, in poptune's own words
# instead: the trial counts, and the command that resumes it.
_TUNE_ENDINGS = ("Trials did not complete", "Experiment has been interrupted")


class TrialsHitFullDisk(OSError):
    """The search stopped because trials could not write to the experiment's disk."""

    def __init__(self, detail: str, errored: int) -> None:
        super().__init__(errno.ENOSPC, detail)
        self.errored = errored  # trials left errored by it (--max-failures 0): to retry


def is_disk_full(exc: BaseException | None) -> bool:
    """True if ``exc``, or an exception it wraps (a Ray task error's cause, a chained one), is a
    full disk or an exceeded quota."""
    return disk_full_cause(exc) is not None


def disk_full_cause(exc: BaseException | None) -> OSError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


@dataclass
class DiskFullWatch:
    """What a search's trials told about the disk: set by :func:`trial_failed`."""

    cause: str | None = None  # the first full-disk error, as its message says it
    errored: int = 0  # trials it left errored (not retried, as with --max-failures 0)


_WATCH: ContextVar[DiskFullWatch | None] = ContextVar("poptune_disk_full", default=None)


@contextmanager
def watching_the_disk() -> Iterator[DiskFullWatch]:
    """Within the block, a trial failing for a full disk stops the search (Tune's callbacks run
    in this thread, and see the watch); Ray's full-disk tracebacks are left out."""
    watch = DiskFullWatch()
    token = _WATCH.set(watch)
    quiet = _FullDiskRecords()
    for name in _RAY_LOGGERS:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield watch
    finally:
        for name in _RAY_LOGGERS:
            logging.getLogger(name).removeFilter(quiet)
        _WATCH.reset(token)


def trial_failed(trial: Any, *, retried: bool) -> bool:
    """Called on every trial failure (the search's progress callback); True if the disk is full,
    and then the search is being stopped. ``retried``: Tune is about to retry the trial."""
    cause = _trial_error(trial)
    if cause is None:
        return False
    watch = _WATCH.get()
    if watch is None:
        # Nothing here stops the search (Tune's loop runs elsewhere, as under ray://): the
        # failure must count against --max-failures, or a trial would be retried forever.
        return True
    if retried:
        # Imported here: the CLI imports this module to read errors, and must not load Ray.
        from poptune.compat import ray_tune_compat

        ray_tune_compat.forgive_failure(trial)  # no fault of the trial's: not one of its failures
    else:
        watch.errored += 1
    if watch.cause is None:
        watch.cause = cause
        stop_like_ctrl_c()
    return True


def _trial_error(trial) -> str | None:
    """The full-disk error that failed ``trial`` (as its message says it), None if another
    error did. Tune has written the error next to the trial's results (pickled, and as text)."""
    pickled = getattr(trial, "pickled_error_file", None)
    if pickled and Path(pickled).is_file():
        try:
            import cloudpickle

            cause = disk_full_cause(cloudpickle.loads(Path(pickled).read_bytes()))
            if cause is not None:
                return cause.strerror or str(cause)
            return None
        except Exception:  # an error Tune could pickle but not this process load: use the text
            pass
    text_file = getattr(trial, "error_file", None)
    if text_file and Path(text_file).is_file():
        # The file holds every failure of the trial: only the last one (the newest) counts.
        text = Path(text_file).read_text(errors="replace").rsplit("Failure # ", 1)[-1]
        return next((meaning for marker, meaning in _TEXTS.items() if marker in text), None)
    return None


class _FullDiskRecords(logging.Filter):
    """Drops log records about a full disk (its exception, or its text), and Tune's endings;
    says once, in one line, that the disk is full, should no trial fail of it (only Tune's
    saves of the experiment state did, which it tries again at the next save)."""

    def __init__(self) -> None:
        super().__init__()
        self._said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and is_disk_full(record.exc_info[1]):
            return self._dropped()
        try:
            message = record.getMessage()
        except Exception:
            return True
        if message.startswith(_TUNE_ENDINGS):
            return False
        return not any(text in message for text in _TEXTS) or self._dropped()

    def _dropped(self) -> bool:
        if not self._said:
            self._said = True
            print(
                "poptune: warning: the experiment's disk is full: Tune cannot save the search's "
                "state there until space is freed (the search stops if a trial cannot save)",
                file=sys.stderr,
                flush=True,
            )
        return False
