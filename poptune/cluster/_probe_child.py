"""The child process of :func:`poptune.cluster.probe.probe_gcs`: `python -P _probe_child.py ADDR`.

It asks the GCS at ADDR (HOST:PORT) whether it is Ray and whether it takes this driver's token,
and prints one JSON line, ``{"result": ..., "detail": ...}`` (see ``ProbeAnswer``). It runs as a
file, not as ``-m poptune...``: of poptune the child imports only ``poptune.compat.ray_compat``
(Ray, and the packages' light ``__init__``; ``poptune.search`` would import pandas and
scikit-learn, a second of start-up against the probe's deadline), and ``-P`` keeps this folder
(whose ``tensorboard.py`` would shadow the real package) off ``sys.path``.

It asks with Ray's private calls, through :mod:`poptune.compat.ray_compat`; where they are not
to be used (another Ray, or POPTUNE_PUBLIC_PATHS=1) the driver does not start this child, and
should they be missing all the same, it answers "ok" and ``ray.init`` decides.
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
        from ray.exceptions import AuthenticationError

        from poptune.compat import ray_compat
    except ImportError as exc:
        answer("ok", f"cannot probe: {exc}")
    if not ray_compat.can_probe_gcs():
        answer("ok", "cannot probe: Ray's private calls are not to be used with this Ray")
    try:
        ray_compat.check_driver_token()
    except AuthenticationError as exc:
        answer("no_token", str(exc))
    try:
        ray_compat.connect_gcs(address)
    except AuthenticationError as exc:
        answer("rejected", str(exc))
    except Exception as exc:  # a silent port: RpcError "Timed out while waiting for GCS ..."
        answer("timeout" if "Timed out" in str(exc) else "error", f"{type(exc).__name__}: {exc}")
    answer("ok")


if __name__ == "__main__":
    main(sys.argv[1])
