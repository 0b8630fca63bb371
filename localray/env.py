"""Environment for a poptune process that starts its own private local Ray, as a laptop user's
does, without touching this machine's ~/.ray or /tmp/ray; and teardown of that Ray by pid.

The process gets its own HOME (so Ray reads and writes HOME/.ray/auth_token) and its own short
Ray temp dir; every Ray process it starts names that dir on its command line or descends from
one that does, which is how teardown finds them (:func:`localray.processes.marked_pids`; never
`ray stop`, never a name pattern).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localray.processes import kill_pids, marked_pids

# What would make the process join a cluster or use someone else's token instead.
RAY_CLIENT_VARS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@contextmanager
def private_ray_env(home: Path) -> Iterator[dict[str, str]]:
    home.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix="ptp", dir="/tmp"))  # short: AF_UNIX path limit
    env = {k: v for k, v in os.environ.items() if k not in RAY_CLIENT_VARS}
    env |= {"HOME": str(home), "RAY_TMPDIR": str(temp_dir)}
    try:
        yield env
    finally:
        kill_pids(marked_pids(str(temp_dir)))
        shutil.rmtree(temp_dir, ignore_errors=True)
