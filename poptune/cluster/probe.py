"""Ask a cluster address "are you Ray, and do you accept me?" before `ray.init` does.

`ray.init(address=...)` answers these questions badly: a cluster that rejects the driver's token
is retried for ~20 s behind a wall of C++ log lines and then reported as a generic
`ConnectionError`; a port where something other than Ray listens hangs for ~40 s; token mode
without any token aborts the process from C++. So a short-lived child process asks first (its
noise and any crash stay in the child, and its deadline is ours) and the answer becomes one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from poptune.errors import UsageError

PROBE_TIMEOUT_S = 15.0
# Ray's own GCS connect timeouts inside the child: a silent port takes about twice the first
# (~10 s), below PROBE_TIMEOUT_S, so the child answers itself. A real GCS answers in milliseconds.
_GCS_CONNECT_TIMEOUT_S = 5
_GCS_RPC_CONNECT_TIMEOUT_S = 2
# Where Ray looks for a driver's token; the head's token is printed by `ray get-auth-token`.
TOKEN_SOURCES = (
    "RAY_AUTH_TOKEN_PATH=FILE, RAY_AUTH_TOKEN, or ~/.ray/auth_token "
    "(print the cluster's token on its head node with `ray get-auth-token`)"
)

# The child program: prints one JSON line, {"result": ..., "detail": ...} (see ProbeAnswer).
_CHILD = Path(__file__).with_name("_probe_child.py")


@dataclass(frozen=True)
class ProbeAnswer:
    result: str  # ok, no_token, rejected, error, timeout
    detail: str = ""


def probe_gcs(address: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> ProbeAnswer:
    """Connect to the GCS at ``address`` (HOST:PORT) from a child process, within ``timeout_s``."""
    env = {
        **os.environ,
        "RAY_py_gcs_connect_timeout_s": str(_GCS_CONNECT_TIMEOUT_S),
        "RAY_gcs_rpc_server_connect_timeout_s": str(_GCS_RPC_CONNECT_TIMEOUT_S),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-P", str(_CHILD), address],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return ProbeAnswer("timeout")
    for line in reversed(proc.stdout.splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        return ProbeAnswer(str(found.get("result")), str(found.get("detail", "")))
    return ProbeAnswer("error", f"probe exited with code {proc.returncode}")


def check_cluster(address: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise a one-line :class:`UsageError` unless ``address`` is a Ray cluster that takes us."""
    answer = probe_gcs(address, timeout_s=timeout_s)
    token_mode = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    if answer.result == "ok":
        return
    if answer.result == "no_token":
        raise UsageError(
            f"--address {address}: RAY_AUTH_MODE=token, but this driver has no token; give it "
            f"the cluster's token: {TOKEN_SOURCES}"
        )
    if answer.result == "rejected" and not token_mode:
        raise UsageError(
            f"--address {address}: the cluster requires Ray's token authentication and this "
            f"driver sent none (RAY_AUTH_MODE is {os.environ.get('RAY_AUTH_MODE', 'unset')!r}); "
            f"set RAY_AUTH_MODE=token and give it the cluster's token: {TOKEN_SOURCES}"
        )
    if answer.result == "rejected":
        raise UsageError(
            f"--address {address}: the cluster rejected this driver's token ({_token_source()}); "
            "use that cluster's token (print it on its head node with `ray get-auth-token`)"
        )
    if answer.result == "timeout":
        raise UsageError(
            f"--address {address}: something listens there but did not answer as a Ray cluster "
            f"within {timeout_s:g} s; check the port (the head's `ray start --port`, 6379 by "
            "default) and that the head is healthy"
        )
    raise UsageError(
        f"--address {address}: not a Ray cluster this driver can join ({answer.detail}); "
        "check the port (the head's `ray start --port`, 6379 by default)"
    )


def _token_source() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "from RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"from RAY_AUTH_TOKEN_PATH={os.environ['RAY_AUTH_TOKEN_PATH']}"
    return "from ~/.ray/auth_token"
