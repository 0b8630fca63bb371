"""The child process of :func:`poptune.cluster.probe.probe_gcs`: `python -P _probe_child.py ADDR`.

It asks the GCS at ADDR (HOST:PORT) whether it is Ray and whether it takes this driver's token,
and prints one JSON line, ``{"result": ..., "detail": ...}`` (see ``ProbeAnswer``). It runs as a
file, not as ``-m poptune...``: the child imports nothing of poptune (``poptune.search`` would
import pandas and scikit-learn, a second of start-up against the probe's deadline), and ``-P``
keeps this folder (whose ``tensorboard.py`` would shadow the real package) off ``sys.path``.

It uses Ray internals (Ray is pinned); should they move, it answers "ok" and ``ray.init``
decides.
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn


def answer(result: str, detail: str = "") -> NoReturn:
    print(json.dumps({"result": result, "detail": detail}), flush=True)
    sys.exit(0)


def main(address: str) -> NoReturn:
    try:
        from ray._private.authentication.authentication_token_setup import (
            ensure_token_if_auth_enabled,
        )
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError as exc:
        answer("ok", f"cannot probe: {exc}")
    try:
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    except AuthenticationError as exc:
        answer("no_token", str(exc))
    try:
        GcsClient(address=address, cluster_id=None)
    except AuthenticationError as exc:
        answer("rejected", str(exc))
    except Exception as exc:  # a silent port: RpcError "Timed out while waiting for GCS ..."
        answer("timeout" if "Timed out" in str(exc) else "error", f"{type(exc).__name__}: {exc}")
    answer("ok")


if __name__ == "__main__":
    main(sys.argv[1])
