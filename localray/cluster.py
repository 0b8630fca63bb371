"""Private local Ray clusters started with `ray start`, stopping exactly what was started (by pid).

Each cluster gets its own short temp dir; every Ray process of it carries that dir or the
head's port on its command line, or descends from one that does. That is how teardown finds
them (:func:`localray.processes.cluster_pids`): never `ray stop` (it would kill every Ray on the
machine) and never a name pattern.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from localray.processes import Pid, cluster_pids, kill_pids, process_table, process_tree

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

    def pids(self) -> list[Pid]:
        return cluster_pids(str(self.temp_dir), self.port)

    def stop(self) -> None:
        kill_pids(self.pids())


_Cluster = TypeVar("_Cluster", bound=LocalCluster)


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


# For start_head's ``env``: a silent node is declared dead after ~3 s instead of Ray's ~30 s, so
# that a lost node's trials are retried within seconds and a test or benchmark that kills nodes
# stays short.
FAST_NODE_DEATH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def start_head(
    num_cpus: int = 2, token_path: Path | None = None, env: dict[str, str] | None = None
) -> LocalCluster:
    """A head with token auth; ``env`` adds settings (e.g. RAY_health_check_period_ms)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ptr", dir="/tmp"))  # short: AF_UNIX path limit
    port = free_port()
    args = [RAY, "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}",
            "--node-ip-address=127.0.0.1", "--include-dashboard=false",
            f"--temp-dir={temp_dir}", "--disable-usage-stats"]  # fmt: skip
    cluster = LocalCluster(port=port, temp_dir=temp_dir, env=_head_env(temp_dir, token_path, env))
    return _ray_start(cluster, args)


def _head_env(
    temp_dir: Path, token_path: Path | None, extra: dict[str, str] | None
) -> dict[str, str]:
    """A head's `ray start` environment: this one and ``extra``, its temp dir, token auth."""
    env = {**os.environ, **(extra or {}), "RAY_TMPDIR": str(temp_dir), "RAY_AUTH_MODE": "token"}
    if token_path is not None:
        env["RAY_AUTH_TOKEN_PATH"] = str(token_path)
    return env


def _ray_start(cluster: _Cluster, args: list[str]) -> _Cluster:
    """Run `ray start` ``args`` in ``cluster``'s environment; if it fails, or is interrupted,
    stop what it started before raising."""
    try:
        subprocess.run(args, env=cluster.env, check=True, capture_output=True, timeout=120)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# ---------------------------------------------------------------- an autoscaling cluster

# What Ray's launcher validates an autoscaling config against, left empty: the fake provider
# runs nothing over SSH or in Docker.
_LAUNCHER_KEYS = {
    "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
    "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
    "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
    "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
}  # fmt: skip
FAKE_HEAD_TYPE = "ray.head.default"  # the fake provider's name for the head's node type


@dataclass
class FakeAutoscalingCluster(LocalCluster):
    """A head with Ray's fake multi-node autoscaler: it adds worker nodes (Ray processes on this
    machine, under the head's temp dir, so :meth:`LocalCluster.stop` finds them) while tasks
    ask for resources no node has, as a cloud provider would add machines."""

    config: dict = field(default_factory=dict)  # the autoscaling config the head runs

    def monitor_pid(self) -> int | None:
        """The head's autoscaler process (Ray's monitor), None if it is not running."""
        for pid in self.pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "autoscaler/_private/monitor.py" in cmdline:
                return int(pid)
        return None

    def autoscaled_node_ids(self) -> set[str]:
        """Ray ids of the worker nodes the autoscaler started: raylets its monitor launched."""
        monitor = self.monitor_pid()
        procs = process_table()
        found = set()
        for pid, (ppid, _) in procs.items():
            if ppid != monitor:
                continue
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            except (OSError, UnicodeDecodeError):
                continue
            if args and args[0].endswith("/raylet"):
                found |= {a.removeprefix("--node_id=") for a in args if a.startswith("--node_id=")}
        return found

    def stop(self) -> None:
        # The autoscaler first, so that it launches no node while the rest go down; then
        # everything else, again until nothing is left (a node it was just starting).
        monitor = self.monitor_pid()
        if monitor is not None:
            kill_pids([monitor])
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            kill_pids(pids)


def start_autoscaling_head(
    worker_types: dict[str, dict],
    max_workers: int,
    head_resources: dict[str, float] | None = None,
    token_path: Path | None = None,
) -> FakeAutoscalingCluster:
    """An autoscaling cluster with token auth: a head with ``head_resources`` (default no CPUs
    for tasks) and ``worker_types`` (autoscaler node types: resources, min_workers,
    max_workers), up to ``max_workers`` workers in all. Its config, as the head runs it, is in
    ``cluster.config``: what `ray up` leaves on a head in ~/ray_bootstrap_config.yaml."""
    import yaml

    head_resources = {"CPU": 0, **(head_resources or {})}
    temp_dir = Path(tempfile.mkdtemp(prefix="pta", dir="/tmp"))  # short: AF_UNIX path limit
    port = free_port()
    config = {
        **_LAUNCHER_KEYS,
        "cluster_name": f"fake-{port}",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": f"127.0.0.1:{port}",  # else the fake nodes look for 6379
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "head_node_type": FAKE_HEAD_TYPE,
        "available_node_types": {
            FAKE_HEAD_TYPE: {"resources": head_resources, "node_config": {}, "max_workers": 0},
            **{name: {"node_config": {}, **spec} for name, spec in worker_types.items()},
        },
    }
    config_path = temp_dir / "autoscaling.yaml"
    config_path.write_text(yaml.safe_dump(config))
    fake = {
        "RAY_FAKE_CLUSTER": "1",  # the fake provider refuses to run without it
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",  # react within a second, not five
    }
    env = _head_env(temp_dir, token_path, fake)
    extra = dict(head_resources)
    args = [RAY, "start", "--head", f"--port={port}", f"--num-cpus={extra.pop('CPU'):g}",
            f"--autoscaling-config={config_path}", "--node-ip-address=127.0.0.1",
            "--include-dashboard=false", f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",  # not Ray's fixed defaults
            f"--temp-dir={temp_dir}", "--disable-usage-stats"]  # fmt: skip
    if "GPU" in extra:
        args.append(f"--num-gpus={extra.pop('GPU'):g}")
    if extra:
        args.append(f"--resources={json.dumps(extra)}")
    cluster = FakeAutoscalingCluster(port=port, temp_dir=temp_dir, env=env, config=config)
    return _ray_start(cluster, args)
