"""Memory a process has freed, given back to the OS.

glibc keeps freed memory for reuse in the arena of the thread that freed it, so a long-lived
process whose threads free a lot, of sizes that grow (a trial worker running trial after trial
on new threads, a search's driver saving ever larger states), grows as surely as if it held it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable


def return_freed_memory() -> bool:
    """Give the memory this process has freed back to the OS (glibc's ``malloc_trim``); False
    where there is no glibc (nothing is kept that way there)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, loaded once, or None."""
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL("libc.so.6").malloc_trim
    return None
