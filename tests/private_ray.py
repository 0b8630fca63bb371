"""Environment for a poptune process that starts its own private local Ray, as a laptop user's
does, without touching this machine's ~/.ray or /tmp/ray; and teardown of that Ray by pid.

The process gets its own HOME (so Ray reads and writes HOME/.ray/auth_token) and its own short
Ray temp dir; every Ray process it starts names that dir on its command line or descends from
one that does, which is how teardown finds them (never `ray stop`, never a name pattern).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.raycluster import kill_pids, process_tree

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


def marked_pids(marker: str) -> list[int]:
    """Processes whose command line contains ``marker``, and all their descendants."""
    roots = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                roots.append(int(entry.name))
    found = set(roots)
    for root in roots:
        found.update(process_tree(root))
    return sorted(found)
