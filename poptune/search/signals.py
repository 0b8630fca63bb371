"""SIGTERM ends a search the way Ctrl-C does: Tune saves its state, and `--resume` continues it.

Tune stops gracefully (final experiment snapshot, trials left resumable) on SIGINT only. SIGTERM
is what a cloud pre-emption, `docker stop`, Kubernetes or a batch scheduler sends, and the
handler `ray.init` installs for it exits at once, leaving up to one snapshot period of work
behind. While a search runs, SIGTERM is therefore handed to whatever handles SIGINT then (Tune's
handler during `Tuner.fit`, or Python's KeyboardInterrupt); a second one, like a second Ctrl-C,
skips the final save.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """Within the block, SIGTERM runs the current SIGINT handler (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum: int, frame: FrameType | None) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:  # SIG_DFL or SIG_IGN: behave like Python's default Ctrl-C
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
