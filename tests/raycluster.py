"""Start and stop private Ray clusters for tests, stopping exactly what was started (by pid).

Each cluster gets its own short temp dir; every Ray process of it carries that dir or the
head's port on its command line, or descends from one that does. That is how teardown finds
them: never `ray stop` (it would kill every Ray on the machine) and never a name pattern.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    port: int
    temp_dir: Path
    env: dict[str, str]
    workers: list[str] = field(default_factory=list)  # temp dirs of worker nodes

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_worker(self, num_cpus: int = 1, resources: str | None = None) -> WorkerNode:
        # A node manager port of our choosing names this node's raylet on its command line.
        worker = WorkerNode(node_manager_port=free_port())
        args = [RAY, "start", f"--address={self.address}", f"--num-cpus={num_cpus}",
                "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                f"--node-manager-port={worker.node_manager_port}"]  # fmt: skip
        if resources:
            args.append(f"--resources={resources}")
        subprocess.run(args, env=self.env, check=True, capture_output=True, timeout=120)
        return worker

    def pids(self) -> list[int]:
        return cluster_pids(str(self.temp_dir), self.port)

    def stop(self) -> None:
        kill_pids(self.pids())


@dataclass(frozen=True)
class WorkerNode:
    """A worker node on this machine, known by the node manager port its raylet was given."""

    node_manager_port: int

    def raylet_pid(self) -> int | None:
        flag = f"--node_manager_port={self.node_manager_port} "
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except (OSError, UnicodeDecodeError):
                    continue
                if "raylet" in cmdline.split(" ", 1)[0] and flag in cmdline + " ":
                    return int(entry.name)
        return None

    def node_id(self) -> str | None:
        """The node's Ray id (hex), read from its raylet's command line."""
        pid = self.raylet_pid()
        if pid is None:
            return None
        for arg in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0"):
            if arg.startswith("--node_id="):
                return arg.removeprefix("--node_id=")
        return None

    def kill(self) -> int:
        """SIGKILL the raylet and its workers at once, as a lost machine would: no drain, no
        goodbye (a worker process would otherwise train on until it next needs its raylet).
        Returns the raylet's pid."""
        pid = self.raylet_pid()
        if pid is None:
            raise RuntimeError(f"no raylet with node manager port {self.node_manager_port}")
        for victim in [pid, *process_tree(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        return pid


def start_head(
    num_cpus: int = 2, token_path: Path | None = None, env: dict[str, str] | None = None
) -> LocalCluster:
    """A head with token auth; ``env`` adds settings (e.g. RAY_health_check_period_ms)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ptr", dir="/tmp"))  # short: AF_UNIX path limit
    port = free_port()
    env = {**os.environ, **(env or {}), "RAY_TMPDIR": str(temp_dir), "RAY_AUTH_MODE": "token"}
    if token_path is not None:
        env["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    args = [RAY, "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}",
            "--node-ip-address=127.0.0.1", "--include-dashboard=false",
            f"--temp-dir={temp_dir}", "--disable-usage-stats"]  # fmt: skip
    cluster = LocalCluster(port=port, temp_dir=temp_dir, env=env)
    try:
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=120)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def process_tree(root: int) -> list[int]:
    """Every process below ``root`` in the parent chain."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found = {root}
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return sorted(found - {root})


def cluster_pids(marker: str, port: int) -> list[int]:
    """Processes whose command line names ``marker`` or ``:port``, and all their descendants."""
    parents: dict[int, int] = {}
    roots = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rpartition(")")[2].split()[1])
        if pid != os.getpid() and (marker in cmdline or f":{port} " in cmdline + " "):
            roots.add(pid)
    found = set(roots)
    grew = True
    while grew:
        children = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


def kill_pids(pids: list[int], grace_s: float = 3.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.1)
