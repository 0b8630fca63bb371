"""What an API call may change in the caller's process, put back as it was when the call ends.

A search sets Ray's and Tune's environment variables, quiets Optuna and Tune's loggers, filters
Optuna's ExperimentalWarning, and training sets torch's threads and global seed. The command
line runs once and exits, so none of that matters there; a notebook that calls
``poptune.search`` and then trains its own model must find its torch threads, its random stream,
its environment and its logging as they were.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
# The loggers poptune sets a level on (Optuna's own verbosity is its "optuna" logger's level).
LOGGERS = ("optuna", "ray.tune", "ray.tune.analysis.experiment_analysis", "ray.train")


@contextmanager
def kept_process_state() -> Iterator[None]:
    """Within the block anything may change the environment, logger levels, warning filters,
    torch's thread count and its global random state; after it they are as before."""
    environ = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    torch = sys.modules.get("torch")  # imported by the block if not before: nothing to keep
    threads = torch.get_num_threads() if torch is not None else None
    rng = torch.random.get_rng_state() if torch is not None else None
    with warnings.catch_warnings():
        try:
            yield
        finally:
            for name in set(os.environ) - set(environ):
                del os.environ[name]
            os.environ.update(environ)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if torch is not None:
                torch.set_num_threads(threads)
                torch.random.set_rng_state(rng)


def keeps_process_state(call: F) -> F:
    """``call`` run inside :func:`kept_process_state`."""

    @functools.wraps(call)
    def kept(*args: Any, **kwargs: Any) -> Any:
        with kept_process_state():
            return call(*args, **kwargs)

    return kept  # type: ignore[return-value]
