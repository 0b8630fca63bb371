"""Joining a Ray cluster, or starting a private local one that is safe by default."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray

from poptune.errors import UsageError
from poptune.search.probe import check_cluster

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ClusterInfo:
    address: str | None  # None: a private local Ray started for this run
    cpus: float
    gpus: float
    nodes: int
    hosts: tuple[str, ...] = ()  # IP address of every live node

    @property
    def local(self) -> bool:
        return self.address is None


@contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None) -> Iterator[ClusterInfo]:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start a local Ray; shut down on exit."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    common = {"log_to_driver": False, "logging_level": "WARNING"}
    if address:
        _check_reachable(address)
        if address != "auto" and "://" not in address:  # ray:// is Ray Client, not a GCS port
            check_cluster(address)
        try:
            ray.init(address=address, **common)
        except (ray.exceptions.AuthenticationError, ConnectionError) as exc:
            # What the probe cannot see coming (the cluster went away in between, or Ray Client).
            raise UsageError(f"--address {address}: cannot join the cluster ({exc})") from exc
    else:
        # Token auth on, said explicitly (Ray would turn it on anyway, with a warning).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        # Ray caches its config at import: without a refresh this driver stays in "disabled"
        # mode while the GCS it starts reads "token", and every connection is rejected.
        ray._raylet.Config.initialize("")
        # address="local": never attach silently to whatever cluster ran last on this machine.
        # Loopback only and no dashboard: nothing listens for the outside world by default.
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **common,
        )
    try:
        resources = ray.cluster_resources()
        alive = [n for n in ray.nodes() if n.get("Alive")]
        yield ClusterInfo(
            address=address,
            cpus=float(resources.get("CPU", 0.0)),
            gpus=float(resources.get("GPU", 0.0)),
            nodes=len(alive),
            hosts=tuple(sorted({str(n.get("NodeManagerAddress", "")) for n in alive})),
        )
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail fast with one line where Ray itself would retry for a long time."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"--address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379 or ray://HOST:10001)"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UsageError(
            f"--address {address}: cannot reach a Ray cluster there ({exc.strerror or exc}); "
            "check that `ray start --head` runs on that host and the port is open to you"
        ) from exc
