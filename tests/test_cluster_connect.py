"""Joining a cluster that cannot be joined: one line on stderr, exit 2, within a bounded time.

Each case is a real `poptune search --address` against the session's token-auth cluster, a
closed port, or a port where something other than Ray listens.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from poptune.search.probe import PROBE_TIMEOUT_S
from tests.raycluster import free_port

pytestmark = [pytest.mark.ray, pytest.mark.flaky(reruns=1)]

TINY = ("--synthetic-rows", "500", "--num-samples", "1", "--max-epochs", "1")
# Python start-up, data, and the TCP check on top of the probe's own deadline.
BOUND_S = PROBE_TIMEOUT_S + 20


def _search(cli, tmp_path, address: str, env: dict[str, str], *extra: str):
    started = time.monotonic()
    r = cli(
        "search", *TINY, "--address", address, "--storage", tmp_path / "runs", *extra,
        env=env, timeout=120,
    )  # fmt: skip
    return r, time.monotonic() - started


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("poptune: error: --address "), lines[0]
    return lines[0]


def test_closed_port_fails_at_once(cli, tmp_path):
    r, took = _search(cli, tmp_path, f"127.0.0.1:{free_port()}", {"RAY_ADDRESS": ""})
    assert r.code == 2
    assert "cannot reach a Ray cluster there" in _one_error_line(r.err)
    assert took < BOUND_S


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


def test_a_port_that_is_not_ray_fails_within_the_probe_deadline(cli, tmp_path, silent_port):
    r, took = _search(cli, tmp_path, f"127.0.0.1:{silent_port}", {"RAY_ADDRESS": ""})
    assert r.code == 2
    assert "did not answer as a Ray cluster" in _one_error_line(r.err)
    assert took < BOUND_S


def test_driver_without_token_mode_is_told_how_to_join(cli, ray_cluster, tmp_path):
    env = {"RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    r, took = _search(cli, tmp_path, ray_cluster.address, env)
    assert r.code == 2
    line = _one_error_line(r.err)
    assert "requires Ray's token authentication" in line and "RAY_AUTH_MODE=token" in line
    assert "RAY_AUTH_TOKEN_PATH" in line
    assert took < BOUND_S


def test_token_mode_without_a_token(cli, ray_cluster, tmp_path):
    # HOME elsewhere: this machine's ~/.ray/auth_token must not be found.
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "", "RAY_AUTH_TOKEN_PATH": "",
           "HOME": str(tmp_path), "RAY_ADDRESS": ""}  # fmt: skip
    r, _ = _search(cli, tmp_path, ray_cluster.address, env)
    assert r.code == 2
    assert "this driver has no token" in _one_error_line(r.err)


def test_wrong_token_is_rejected(cli, ray_cluster, tmp_path):
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64, "RAY_ADDRESS": ""}
    r, took = _search(cli, tmp_path, ray_cluster.address, env)
    assert r.code == 2
    line = _one_error_line(r.err)
    assert "rejected this driver's token (from RAY_AUTH_TOKEN)" in line
    assert took < BOUND_S


@pytest.mark.parametrize("gpus", ["1", "0.5"])
def test_gpu_request_on_a_cpu_only_cluster_fails_fast(cli, ray_cluster, ray_env, tmp_path, gpus):
    r, took = _search(cli, tmp_path, ray_cluster.address, ray_env, "--gpus-per-trial", gpus)
    assert r.code == 2, r.err[-3000:]
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("poptune: error: --gpus-per-trial")
    assert "GPU" in lines[0] and "add GPU nodes" in lines[0]
    assert took < BOUND_S
