"""SIGTERM and SIGUSR1 end a poptune command the way Ctrl-C does, at every phase of it.

Tune stops gracefully (final experiment snapshot, trials left resumable) on SIGINT, and on
SIGUSR1 while ``Tuner.fit`` runs. SIGTERM is what a cloud pre-emption, `docker stop`, Kubernetes
or a batch scheduler sends, and SIGUSR1 what SLURM's ``--signal`` sends before a job's time
runs out; outside ``fit`` the first would run the handler ``ray.init`` installs (it exits at
once, in the middle of whatever runs) and the second kills the process outright. Within
:func:`sigterm_as_sigint` both are handed to whatever handles SIGINT then: Tune's handler during
``fit``, else Python's KeyboardInterrupt, which poptune turns into exit code 130 and the command
that continues the job. A second signal, like a second Ctrl-C, skips the final save.

Tune also leaves its SIGINT and SIGUSR1 handlers installed once ``fit`` returns: the first Ctrl-C
after a search (while `poptune run` retrains the finalists, say) would only set a flag nobody
reads any more. The block puts back the handlers it found, whoever replaced them meanwhile.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# The signals that mean "stop and save", besides SIGINT itself.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def forward_to_sigint(signum: int, frame: FrameType | None) -> None:
    """A handler that runs the current SIGINT handler, as if Ctrl-C had been pressed."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIG_DFL or SIG_IGN: behave like Python's default Ctrl-C
        raise KeyboardInterrupt


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """Within the block, SIGTERM and SIGUSR1 run the current SIGINT handler (main thread only);
    after it, SIGINT, SIGTERM and SIGUSR1 have the handlers they had before it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    for sig in STOP_SIGNALS:
        signal.signal(sig, forward_to_sigint)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_like_ctrl_c() -> None:
    """Stop what runs as a Ctrl-C would: Tune's graceful stop during ``fit`` (its final save,
    trials left resumable), else a KeyboardInterrupt. Main thread only (Tune's callbacks run
    there). Tune's own "Stop signal received" line is held back: no signal was."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or handler is signal.default_int_handler:
        raise KeyboardInterrupt
    tune_log = logging.getLogger("ray.tune.tune")
    level = tune_log.level
    tune_log.setLevel(logging.ERROR)
    try:
        handler(signal.SIGINT, None)
    finally:
        tune_log.setLevel(level)
