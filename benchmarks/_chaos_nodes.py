"""A local cluster whose worker nodes get killed: a head and N worker nodes on 127.0.0.1, each
its own `ray start` with token auth, and a thread that SIGKILLs a random worker node at random
intervals and starts a replacement, as a cloud that loses machines and an autoscaler that
replaces them would.

Every process is known by pid: a worker node is its raylet (found by the node manager port it
was given, :class:`localray.cluster.WorkerNode`) with the processes below it, plus Ray's log
monitor that its `ray start` left beside it (found as the log monitor that appeared while that
`ray start` ran). Killing a node SIGKILLs exactly those; the cluster's teardown stops everything
that names its temp dir or port (:meth:`localray.cluster.LocalCluster.stop`). Never `ray stop`,
never a name pattern: other Rays on this machine are somebody else's.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from localray.cluster import FAST_NODE_DEATH, LocalCluster, WorkerNode, start_head
from localray.processes import Pid, kill_pids, process_tree

# Process titles of a worker node's own Ray processes, not of a task or actor.
_NODE_TITLES = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass
class Node:
    """A worker node started here: its raylet, and the log monitor its `ray start` left."""

    worker: WorkerNode
    log_monitor: Pid | None
    started_at: float  # time.monotonic()

    def busy_workers(self) -> list[str]:
        """Titles of the node's worker processes running a task or an actor (a trial)."""
        return list(self._busy().values())

    def busy_pids(self) -> set[int]:
        return set(self._busy())

    def _busy(self) -> dict[int, str]:
        pid = self.worker.raylet_pid()
        if pid is None:
            return {}
        titles = {int(p): _cmdline(p) for p in process_tree(pid)}
        return {
            p: t
            for p, t in titles.items()
            if t.startswith("ray::") and not t.startswith(_NODE_TITLES)
        }

    def kill(self) -> None:
        """SIGKILL the raylet and its workers at once (no drain), then its log monitor."""
        with contextlib.suppress(RuntimeError):  # its raylet already gone: nothing to lose
            self.worker.kill()
        if self.log_monitor is not None:
            kill_pids([self.log_monitor], grace_s=0.0)


@dataclass(frozen=True)
class Kill:
    at_s: float  # seconds after the killer started
    node_port: int  # the node manager port of the node killed
    busy: tuple[str, ...]  # its workers running a trial (or another task) at the time
    replaced_in_s: float  # how long the replacement's `ray start` took


@dataclass
class ChaosCluster:
    head: LocalCluster
    nodes: list[Node] = field(default_factory=list)
    cpus_per_node: int = 1

    @property
    def address(self) -> str:
        return self.head.address

    def add_node(self) -> Node:
        before = {int(p) for p in self.head.pids()}
        worker = self.head.add_worker(num_cpus=self.cpus_per_node)
        monitors = [p for p in self.head.pids() if p not in before and "log_monitor" in _cmdline(p)]
        node = Node(worker, monitors[0] if monitors else None, time.monotonic())
        self.nodes.append(node)
        return node

    def kill_one(
        self, rng: random.Random, node: Node | None = None
    ) -> tuple[Node, tuple[str, ...]]:
        """Kill ``node``, or a random worker node."""
        node = node or rng.choice(self.nodes)
        busy = tuple(node.busy_workers())
        node.kill()
        self.nodes.remove(node)
        return node, busy


@contextlib.contextmanager
def chaos_cluster(
    workers: int, token_path: Path, head_cpus: int = 0, cpus_per_node: int = 1
) -> Iterator[ChaosCluster]:
    """A head (``head_cpus`` CPUs for trials: none by default, so that every trial runs on a
    node that may be killed) and ``workers`` worker nodes; everything stopped by pid on exit."""
    head = start_head(num_cpus=head_cpus, token_path=token_path, env=FAST_NODE_DEATH)
    cluster = ChaosCluster(head, cpus_per_node=cpus_per_node)
    try:
        for _ in range(workers):
            cluster.add_node()
        yield cluster
    finally:
        head.stop()


class Killer(threading.Thread):
    """Kills a random worker node after exponential waits of mean ``mean_s``, and starts a
    replacement at once, until :meth:`finish` (or ``max_kills``). A failure in the thread is
    kept and raised by :meth:`finish`, not lost with the thread.

    With ``choose`` (given the live nodes, the one to kill now or None: for instance, a node
    whose trial has logged an epoch there) it instead waits, before each kill, until ``choose``
    names a node, and kills that one: on a loaded
    machine, where a restarted trial may take longer to start than a timed kill takes to come,
    timed kills can starve the search, while kills paced by its progress always leave it room
    to finish, and each one costs a trial real work that its checkpoint must save."""

    def __init__(
        self,
        cluster: ChaosCluster,
        mean_s: float,
        seed: int,
        max_kills: int | None = None,
        choose: Callable[[list[Node]], Node | None] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="node-killer")
        self.cluster = cluster
        self.mean_s = mean_s
        self.max_kills = max_kills
        self.kills: list[Kill] = []
        self._choose = choose
        self._rng = random.Random(seed)
        self._halt = threading.Event()
        self._error: BaseException | None = None
        self._t0 = time.monotonic()

    def run(self) -> None:
        try:
            while self.max_kills is None or len(self.kills) < self.max_kills:
                if self._halt.wait(self._rng.expovariate(1.0 / self.mean_s)):
                    return
                node = self._wait_for_choice() if self._choose is not None else None
                if self._choose is not None and node is None:
                    return
                self._kill_and_replace(node)
        except BaseException as exc:  # kept for finish(): a silent thread would fake survival
            self._error = exc

    def _wait_for_choice(self) -> Node | None:
        """The node ``choose`` names; None when told to finish first."""
        assert self._choose is not None
        while not self._halt.is_set():
            node = self._choose(list(self.cluster.nodes))
            if node is not None:
                return node
            self._halt.wait(0.2)
        return None

    def _kill_and_replace(self, node: Node | None = None) -> None:
        at = time.monotonic() - self._t0
        node, busy = self.cluster.kill_one(self._rng, node)
        began = time.monotonic()
        try:
            self.cluster.add_node()
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode(errors="replace") if exc.stderr else ""
            raise RuntimeError(f"replacement node did not start: {stderr[-2000:]}") from exc
        self.kills.append(Kill(at, node.worker.node_manager_port, busy, time.monotonic() - began))
        port = node.worker.node_manager_port
        _said(f"killed node :{port} at {at:.0f} s, running {list(busy) or 'nothing'}")

    def finish(self) -> list[Kill]:
        self._halt.set()
        self.join(timeout=180)  # a replacement's `ray start` may be under way
        if self._error is not None:
            raise RuntimeError(f"the node killer failed: {self._error}") from self._error
        return self.kills


def _said(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)
