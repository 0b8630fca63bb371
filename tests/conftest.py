"""Shared fixtures: tiny seeded data, a CLI runner, and one session-wide Ray cluster."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localray.cluster import LocalCluster, start_head
from poptune.data import prepare, synthetic_tracks

POPTUNE = [sys.executable, "-m", "poptune"]


@pytest.fixture(scope="session")
def small_frame():
    return synthetic_tracks(1500, seed=7)


@pytest.fixture(scope="session")
def small_prepared(small_frame):
    return prepare(small_frame, seed=0)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path):
    """Run `poptune ARGS` as a user would: a subprocess, its real exit code and streams."""

    def run(*args: str, env: dict | None = None, timeout: float = 600) -> CliResult:
        proc = subprocess.run(
            [*POPTUNE, *map(str, args)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, **(env or {})},
            timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def ray_token(tmp_path_factory) -> Path:
    """A private token, so tests never read or write ~/.ray/auth_token."""
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(secrets.token_hex(32))
    return path


@pytest.fixture(scope="session")
def ray_cluster(ray_token) -> Iterator[LocalCluster]:
    """One 2-CPU Ray head for every test that needs Ray; stopped by pid at the end."""
    cluster = start_head(num_cpus=2, token_path=ray_token)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def ray_env(ray_cluster) -> dict[str, str]:
    """Environment for a driver joining the session cluster (token auth on)."""
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": ray_cluster.env["RAY_AUTH_TOKEN_PATH"],
        "RAY_ADDRESS": "",
    }
