"""Joining a Ray cluster, or starting a private local one that is safe by default."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

from poptune.cluster.capacity import ClusterInfo
from poptune.cluster.probe import check_cluster
from poptune.compat import ray_compat
from poptune.errors import UsageError

CONNECT_TIMEOUT_S = 10.0


@contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None) -> Iterator[ClusterInfo]:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start a local Ray; shut down on exit."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    common = {"log_to_driver": False, "logging_level": "WARNING"}
    # Trial workers get one glibc malloc arena (unless the user's environment sets a number):
    # Tune runs each trial on a new thread of a reused worker, and with glibc's default (up to
    # 8 arenas a core) a trial's allocations landed in arenas shared with Ray's own threads,
    # where freed memory fragmented: a worker's RSS grew by 5-10 MB a trial, for good.
    arenas = {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "1")}
    with _interruptible_start():
        _start_or_join(address, num_cpus, common, arenas)
    try:
        yield joined_cluster(address)
    finally:
        ray.shutdown()
        _reinstall_sigterm()


def _reinstall_sigterm() -> None:
    """Set SIGTERM's handler again after `ray.shutdown`, which puts the signal back to the
    system's default at the OS level while Python still lists its handler: a SIGTERM after the
    search (while `poptune run` retrains its finalists) killed the process outright, exit -15,
    with no word and the retrain workers left running."""
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGTERM)
        if handler is not None:  # None: set from outside Python, nothing to put back
            signal.signal(signal.SIGTERM, handler)


@contextmanager
def _interruptible_start() -> Iterator[None]:
    """Ctrl-C or SIGTERM while Ray starts leaves no half-started Ray behind, and the handler
    the process had for SIGTERM is back once Ray has started.

    `ray.init` replaces the SIGTERM handler, first thing, with one that exits at once
    (SystemExit(15)): a SIGTERM there would end the command with exit code 15 and no word, and
    after it poptune's own handler (SIGTERM as Ctrl-C, poptune/driver/signals.py) would be gone
    for the rest of the command. So that SystemExit is read as the interrupt it stands for, and
    a handler someone chose (poptune's, or a caller's) is put back; where there was none, Ray's
    stays, as it always has.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    except BaseException as exc:
        # Stops whatever of a private Ray had started (a no-op otherwise); a failure to stop it
        # must not hide the interrupt that is being raised.
        with contextlib.suppress(Exception):
            ray.shutdown()
        _reinstall_sigterm()
        if isinstance(exc, SystemExit) and exc.code == signal.SIGTERM:
            raise KeyboardInterrupt from None
        raise
    finally:
        if main and previous not in (None, signal.SIG_DFL):
            signal.signal(signal.SIGTERM, previous)


def _start_or_join(address: str | None, num_cpus: int | None, common: dict, arenas: dict) -> None:
    if address:
        _check_reachable(address)
        # ray:// is Ray Client, not a GCS port; the probe asks with Ray's private calls.
        if address != "auto" and "://" not in address and ray_compat.can_probe_gcs():
            check_cluster(address)
        try:
            # No runtime env for the arena setting here: with one, no prestarted worker can serve
            # a trial, and each starts later (measured: a two-node search's second node came up
            # only after its trials had all run on the head). A cluster's nodes set it where Ray
            # starts (cluster.yaml's start commands), and their workers inherit it.
            ray.init(address=address, **common)
        except (ray.exceptions.AuthenticationError, ConnectionError) as exc:
            # What the probe cannot see coming (the cluster went away in between, or Ray Client).
            raise UsageError(f"--address {address}: cannot join the cluster ({exc})") from exc
    else:
        # Token auth on, said explicitly (Ray would turn it on anyway, with a warning), and
        # Ray's config, cached at import, refreshed to match (see enable_token_auth).
        ray_compat.enable_token_auth()
        created = prepare_local_token()
        # address="local": never attach silently to whatever cluster ran last on this machine.
        # Loopback only and no dashboard: nothing listens for the outside world by default.
        # The arena setting reaches the workers through the environment the Ray processes
        # inherit (not a runtime env, which would cost each worker's prestart).
        saved = os.environ.get("MALLOC_ARENA_MAX")
        os.environ.update(arenas)
        try:
            with ray_compat.single_machine_mode():  # 127.0.0.1 stays the node address
                ray.init(
                    address="local",
                    num_cpus=num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **common,
                )
        finally:
            if saved is None:
                os.environ.pop("MALLOC_ARENA_MAX", None)
        if created is not None and created.exists():
            created.chmod(0o600)  # Ray writes the file it generates with the umask's mode


def joined_cluster(address: str | None) -> ClusterInfo:
    """The cluster this process's Ray is connected to, as Ray reports it now; ``address`` None
    for a private local Ray."""
    resources = ray.cluster_resources()
    alive = [n for n in ray.nodes() if n.get("Alive")]
    return ClusterInfo(
        address=address,
        cpus=float(resources.get("CPU", 0.0)),
        gpus=float(resources.get("GPU", 0.0)),
        nodes=len(alive),
        hosts=tuple(sorted({str(n.get("NodeManagerAddress", "")) for n in alive})),
        node_resources=tuple(
            (float(n["Resources"].get("CPU", 0.0)), float(n["Resources"].get("GPU", 0.0)))
            for n in alive
            if n.get("Resources")
        ),
    )


def default_token_path() -> Path:
    """Where Ray keeps its token when neither RAY_AUTH_TOKEN nor RAY_AUTH_TOKEN_PATH says
    otherwise, and where `ray.init` and `ray get-auth-token --generate` write a new one."""
    return Path.home() / ".ray" / "auth_token"


def prepare_local_token() -> Path | None:
    """Make sure the token of a private local Ray is private to this user.

    Ray generates a missing ``~/.ray/auth_token`` with a plain ``open(path, "w")``: mode 0644
    under the usual umask, so every user of the machine could read the secret that admits
    clients to the cluster. poptune writes it itself first, with mode 0600. A token file that
    already exists is the user's: it is left alone, but if other users may read it, one warning
    line says so and how to fix it.

    Returns the token file if Ray is left to create it in ``ray.init`` (it will create the
    default file although RAY_AUTH_TOKEN_PATH names a missing one), so the caller can tighten
    it afterwards; else None.
    """
    if os.environ.get("RAY_AUTH_TOKEN"):
        return None  # the token itself is in the environment: no file is read or written
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(named).expanduser() if named else default_token_path()
    if not path.exists() and not named:
        try:
            _write_private_token(path)
            # Ray's token loader caches what it found; it must see this file, not "none".
            ray_compat.reset_auth_token_cache()
        except FileExistsError:
            pass  # another process made one in between: it is checked below like any other
        except OSError:
            return None  # an unwritable home: Ray's own attempt will fail and say why
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            print(
                f"poptune: warning: the Ray token file {path} is open to other users "
                f"(mode {mode:04o}); whoever reads it can run code on your Ray clusters; "
                f"chmod 600 {path}",
                file=sys.stderr,
                flush=True,
            )
        return None
    default = default_token_path()
    return None if default.exists() else default


def _write_private_token(path: Path) -> None:
    """A new token file that only its owner can read (never, even briefly, anyone else)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask may only have taken bits away; be exact
        f.write(secrets.token_hex(32))  # what Ray's own generator makes: 256 random bits


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
