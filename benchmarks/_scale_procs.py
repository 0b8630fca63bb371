"""The processes of the scale benchmark: searches side by side, a Ray head of its own, teardown.

Every search and measurement runs in a child process (`python -m benchmarks._scale_run` or
`benchmarks._ray_floor`) with its own HOME and Ray temp dir, so its private local Ray never
touches this machine's ~/.ray or /tmp/ray, and the Ray processes it leaves are found by that dir
and stopped by pid (localray/env.py); a head for the joined-cluster figures is started with
`ray start` under a token written here, and stopped by its own pids (localray/cluster.py).
Never `ray stop`, never a name pattern: other Rays on this machine are somebody else's.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from localray.cluster import LocalCluster, start_head
from localray.env import private_ray_env


@dataclass
class Child:
    """A benchmark process, its output files, and when it must have finished."""

    module: str
    spec: dict[str, Any]
    proc: subprocess.Popen
    out: Path
    err: Path
    deadline: float  # time.monotonic()

    def result(self) -> dict[str, Any]:
        try:
            rc = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.module} {self.spec} ran past its time limit") from None
        lines = self.out.read_text().strip().splitlines()
        if rc != 0 or not lines:
            tail = "\n".join(self.err.read_text().splitlines()[-30:])
            raise RuntimeError(f"{self.module} {self.spec} failed (exit {rc}):\n{tail}")
        return json.loads(lines[-1])

    def stop(self) -> None:
        """End it if it still runs: its own session, so the child and what it started, and
        nothing else (its Ray's processes are stopped by pid when its environment closes)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)


def launch(module: str, spec: Any, env: dict[str, str], logs: Path, timeout_s: float) -> Child:
    logs.mkdir(parents=True, exist_ok=True)
    data = asdict(spec)
    tag = f"{module.rsplit('.', 1)[-1]}-{len(list(logs.iterdir())) // 2}"
    out, err = logs / f"{tag}.json", logs / f"{tag}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(data)],
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return Child(module, data, proc, out, err, time.monotonic() + timeout_s)


@contextmanager
def started(
    module: str,
    specs: list[Any],
    work: Path,
    timeout_s: float,
    auth: dict[str, str] | None = None,
) -> Iterator[list[Child]]:
    """One process of ``module`` per spec, all at once, each with its own HOME and Ray temp
    dir (and ``auth``: what it needs to join a cluster); all stopped on exit."""
    with ExitStack() as stack:
        children = []
        for spec in specs:
            home = work / f"home-{len(list(work.glob('home-*')))}"
            env = stack.enter_context(private_ray_env(home)) | (auth or {})
            child = launch(module, spec, env, work / "logs", timeout_s)
            stack.callback(child.stop)  # before its environment's teardown: LIFO
            children.append(child)
        yield children


def run_alone(
    module: str, spec: Any, work: Path, timeout_s: float, auth: dict[str, str] | None = None
) -> dict[str, Any]:
    with started(module, [spec], work, timeout_s, auth) as (child,):
        return child.result()


@dataclass(frozen=True)
class Head:
    """A Ray head of the benchmark's own, and what a driver needs to join it."""

    cluster: LocalCluster
    token_path: Path

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def auth(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path)}


@contextmanager
def own_head(cpus: int, work: Path) -> Iterator[Head]:
    """`ray start --head` on 127.0.0.1 with ``cpus`` CPUs, a free port, its own temp dir and a
    private token (written here, mode 0600); stopped by its own pids on exit."""
    token = work / "ray-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    cluster = start_head(num_cpus=cpus, token_path=token)
    try:
        yield Head(cluster, token)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)


@contextmanager
def work_dir() -> Iterator[Path]:
    """Where the experiments, homes and logs go; removed afterwards (a short path: Ray's
    sockets live under the homes' temp dirs, and AF_UNIX paths are short)."""
    path = Path(tempfile.mkdtemp(prefix="pscale", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
