"""SIGTERM inside `sigterm_as_sigint` runs the SIGINT handler of the moment (no Ray)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from poptune.driver.signals import sigterm_as_sigint


def _deliver(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # Python runs handlers between bytecodes of the main thread


def test_sigterm_goes_to_the_sigint_handler_then_the_old_handler_is_back():
    calls: list[int] = []
    before_int = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    before_term = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(-signum))
    try:
        with sigterm_as_sigint():
            _deliver(signal.SIGTERM)
        assert calls == [signal.SIGINT]  # what Tune's handler would get: a Ctrl-C
        _deliver(signal.SIGTERM)
        assert calls == [signal.SIGINT, -signal.SIGTERM]  # the previous handler, restored
    finally:
        signal.signal(signal.SIGINT, before_int)
        signal.signal(signal.SIGTERM, before_term)


def test_without_a_sigint_handler_sigterm_is_a_keyboard_interrupt():
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), sigterm_as_sigint():
            _deliver(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, before)
