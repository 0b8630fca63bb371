"""Is the experiment storage one every node of the cluster can reach?

Ray Tune writes each trial's checkpoints from the node the trial runs on, into `--storage`. A
plain path is a folder on *each* node's own disk: fine on one machine, broken across machines
(Ray fails such trials with "Unable to set up cluster storage", and a lost node's checkpoints
would be gone with it). It works only if the path is a shared file system (NFS, EFS) mounted at
the same place everywhere, which poptune cannot see; so it warns rather than refuses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Protocol


class StorageSetting(Protocol):
    """Where a search writes (SearchSettings is one)."""

    @property
    def storage(self) -> str: ...
    @property
    def storage_is_local(self) -> bool: ...


def is_this_machine(host: str) -> bool:
    """True if ``host`` is a loopback address or an address of one of this machine's interfaces."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except (socket.gaierror, UnicodeError):
        return False
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        if ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback:
            return True
        # Binding succeeds only for an address this machine owns: no packet is sent.
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((ip, 0))
            return True
        except OSError:
            continue
    return False


def address_host(address: str) -> str:
    """`10.0.0.5` from `10.0.0.5:6379` or `ray://10.0.0.5:10001` (IPv6 in brackets too)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    return host.strip("[]")


def remote_hosts(
    address: str | None,
    node_hosts: Iterable[str],
    *,
    is_local: Callable[[str], bool] = is_this_machine,
) -> list[str]:
    """The hosts among ``address`` and the cluster's nodes that are not this machine."""
    hosts = {h for h in node_hosts if h}
    if address and address != "auto":
        hosts.add(address_host(address))
    return sorted(h for h in hosts if not is_local(h))


def local_storage_warning(
    settings: StorageSetting,
    address: str | None,
    node_hosts: Iterable[str],
    *,
    autoscaled: Iterable[str] = (),
    is_local: Callable[[str], bool] = is_this_machine,
) -> str | None:
    """A warning when ``settings.storage`` is a local path but the cluster spans machines.

    ``address`` is the one actually joined (``--address`` or ``RAY_ADDRESS``); ``node_hosts``
    the IP addresses of the cluster's live nodes; ``autoscaled`` the node types its autoscaler
    may add (a head that starts with no workers runs every trial on machines not up yet).
    """
    if not settings.storage_is_local:
        return None
    others = remote_hosts(address, node_hosts, is_local=is_local)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        where = f"the cluster reaches other machines ({shown})"
    elif autoscaled:
        where = f"the cluster's autoscaler adds {'/'.join(autoscaled)} nodes, other machines"
    else:
        return None
    return (
        f"--storage {settings.storage} is a path on this machine, but {where}; trials there "
        "write checkpoints to their own disks and fail Ray's storage check unless that path "
        "is a shared file system mounted on every node; "
        "use --storage s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"
    )
