"""Joining a cluster that cannot be joined: one line on stderr, exit 2, within a bounded time.

Each case is a real `poptune search --address` against the session's token-auth cluster, a
closed port, or a port where something other than Ray listens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from poptune.cluster.probe import PROBE_TIMEOUT_S
from tests.driver import POPTUNE
from tests.quirks import doc_rows

pytestmark = pytest.mark.ray

TINY = ("--synthetic-rows", "500", "--num-samples", "1", "--max-epochs", "1")
# From the driver's "searching" line, when it starts to join, to its exit: the probe's own
# deadline, plus its child's start-up, the TCP check and the error path. The start-up before
# that line (Python, torch, Ray, the data: seconds of CPU) is not counted: on a loaded machine
# it alone can take longer than any bound, and it is not what a bad address costs.
BOUND_S = PROBE_TIMEOUT_S + 20
SEARCHING = "poptune: searching"


@dataclass
class Joined:
    code: int
    out: str
    err: str
    took: float | None  # seconds from the "searching" line to the driver's exit (None: no line)

    def assert_fast(self) -> None:
        assert self.took is not None, f"no {SEARCHING!r} line:\n{self.out[-2000:]}{self.err}"
        assert self.took < BOUND_S, f"{self.took:.1f} s from joining to exit"


def _search(tmp_path, address: str, env: dict[str, str], *extra: str) -> Joined:
    """`poptune search --address ADDRESS` as a user runs it, timed from where joining starts."""
    proc = subprocess.Popen(
        [*POPTUNE, "search", *TINY, "--address", address, "--storage", str(tmp_path / "runs"),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, **env},
    )  # fmt: skip
    out: list[tuple[float, str]] = []
    err: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append((time.monotonic(), line))

    def read_err() -> None:
        assert proc.stderr is not None
        err.extend(proc.stderr)

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err)]
    for reader in readers:
        reader.start()
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    exited = time.monotonic()
    for reader in readers:
        reader.join(timeout=10)
    text = "".join(line for _, line in out)
    joining = next((at for at, line in out if line.startswith(SEARCHING)), None)
    return Joined(code, text, "".join(err), None if joining is None else exited - joining)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on, held (bound, never listening) so no other process can take it
    meanwhile: a connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("poptune: error: --address "), lines[0]
    return lines[0]


def test_closed_port_fails_at_once(tmp_path, closed_port):
    r = _search(tmp_path, f"127.0.0.1:{closed_port}", {"RAY_ADDRESS": ""})
    assert r.code == 2
    assert "cannot reach a Ray cluster there" in _one_error_line(r.err)
    # At once: before the data is loaded, let alone a Ray started.
    assert "poptune: loading" not in r.out and SEARCHING not in r.out, r.out


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (not Ray)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


def test_a_port_that_is_not_ray_fails_within_the_probe_deadline(tmp_path, silent_port):
    r = _search(tmp_path, f"127.0.0.1:{silent_port}", {"RAY_ADDRESS": ""})
    assert r.code == 2
    assert "did not answer as a Ray cluster" in _one_error_line(r.err)
    r.assert_fast()


def test_driver_without_token_mode_is_told_how_to_join(ray_cluster, tmp_path):
    env = {"RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    r = _search(tmp_path, ray_cluster.address, env)
    assert r.code == 2
    line = _one_error_line(r.err)
    assert "requires Ray's token authentication" in line and "RAY_AUTH_MODE=token" in line
    assert "RAY_AUTH_TOKEN_PATH" in line
    r.assert_fast()


def test_token_mode_without_a_token(ray_cluster, tmp_path):
    # HOME elsewhere: this machine's ~/.ray/auth_token must not be found.
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": "",
           "HOME": str(tmp_path), "RAY_ADDRESS": ""}  # fmt: skip
    r = _search(tmp_path, ray_cluster.address, env)
    assert r.code == 2
    assert "this driver has no token" in _one_error_line(r.err)


def test_wrong_token_is_rejected(ray_cluster, tmp_path):
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64, "RAY_ADDRESS": ""}
    r = _search(tmp_path, ray_cluster.address, env)
    assert r.code == 2
    line = _one_error_line(r.err)
    assert "rejected this driver's token (from RAY_AUTH_TOKEN)" in line
    r.assert_fast()


@pytest.mark.parametrize("gpus", ["1", "0.5"])
def test_gpu_request_on_a_cpu_only_cluster_fails_fast(ray_cluster, ray_env, tmp_path, gpus):
    r = _search(tmp_path, ray_cluster.address, ray_env, "--gpus-per-trial", gpus)
    assert r.code == 2, r.err[-3000:]
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("poptune: error: --gpus-per-trial")
    assert "GPU" in lines[0] and "add GPU nodes" in lines[0]
    if gpus == "1":
        code, message = doc_rows("Clusters")[
            "`--gpus-per-trial 1` on a cluster without GPUs, no node types to read"
        ]
        assert code == 2 and message in lines[0]
    r.assert_fast()


def test_a_trial_bigger_than_the_cluster_is_refused_naming_the_way_out(
    ray_cluster, ray_env, tmp_path
):
    """2 CPUs and no node types to read: lower it, or --max-concurrent to wait for nodes."""
    r = _search(tmp_path, ray_cluster.address, ray_env, "--cpus-per-trial", "4")
    assert r.code == 2, r.err[-3000:]
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("poptune: error: --cpus-per-trial 4")
    code, message = doc_rows("Clusters")[
        "`--cpus-per-trial 4` on a cluster of 2 CPUs, no node types to read"
    ]
    assert code == 2 and message in lines[0]
    r.assert_fast()
