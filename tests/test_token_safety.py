"""poptune's private local Ray is safe by default: its token file is for its user only, a token
file others can read is warned about, a client without the token is refused, and nothing it
starts listens beyond the loopback interface.

Every test gives poptune a HOME of its own, so this machine's ~/.ray is never read or written.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localray.env import private_ray_env
from localray.processes import kill_pids, process_tree

pytestmark = pytest.mark.ray

WARNING = "poptune: warning:"
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_ray_writes_its_new_token_for_this_user_only(tmp_path):
    home = tmp_path / "home"
    with private_ray_env(home) as env:
        proc = subprocess.run(
            [sys.executable, "-m", "poptune", "search", "--synthetic-rows", "1000",
             "--num-samples", "1", "--max-epochs", "1", "--storage", "runs", "--name", "t"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    token = home / ".ray" / "auth_token"
    assert oct(_mode(token)) == oct(0o600)
    assert oct(_mode(token.parent)) == oct(0o700)
    assert re.fullmatch(r"[0-9a-f]{64}", token.read_text())
    assert WARNING not in proc.stderr


# Holds poptune's private Ray open (poptune.cluster.session.ray_session, what every search uses)
# until its stdin closes; one task first, so a worker process is up as well.
_HOLD = """
import json, sys
import ray
from poptune.cluster.session import ray_session
with ray_session(None, num_cpus=1):
    ray.get(ray.remote(lambda: 1).remote())
    print(json.dumps({"gcs": ray.get_runtime_context().gcs_address}), flush=True)
    sys.stdin.readline()
"""

# A client's first step in `ray.init(address=...)`: Ray's own GCS client, with its auth.
_CLIENT = """
import sys
from ray._raylet import GcsClient
from ray.exceptions import AuthenticationError
try:
    GcsClient(address=sys.argv[1], cluster_id=None)
except AuthenticationError as exc:
    print("refused:", exc)
    sys.exit(3)
print("accepted")
"""


@dataclass
class HeldRay:
    gcs: str
    pids: list[int]
    token: Path
    stderr: str


@pytest.fixture(scope="module")
def held_ray(tmp_path_factory) -> Iterator[HeldRay]:
    """A private Ray started with an existing token file that other users may read (0644)."""
    root = tmp_path_factory.mktemp("held")
    token = root / "home" / ".ray" / "auth_token"
    token.parent.mkdir(parents=True)
    token.write_text(secrets.token_hex(32))
    token.chmod(0o644)
    with private_ray_env(root / "home") as env, (root / "stderr").open("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline()  # blocks until the Ray is up, or the process ended
            err.seek(0)
            stderr = err.read()
            assert line, f"the private Ray did not start:\n{stderr[-3000:]}"
            yield HeldRay(json.loads(line)["gcs"], [proc.pid, *process_tree(proc.pid)], token,
                          stderr)  # fmt: skip
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                kill_pids([*process_tree(proc.pid), proc.pid])


def test_an_open_token_file_gets_one_warning_and_is_left_as_it_is(held_ray):
    warnings = [line for line in held_ray.stderr.splitlines() if line.startswith(WARNING)]
    assert len(warnings) == 1, held_ray.stderr[-3000:]
    assert str(held_ray.token) in warnings[0] and "0644" in warnings[0]
    assert warnings[0].endswith(f"chmod 600 {held_ray.token}")
    assert oct(_mode(held_ray.token)) == oct(0o644)  # the user's file: poptune only says so


@pytest.mark.parametrize(
    ("token", "accepted"),
    [("none", False), ("wrong", False), ("the cluster's", True)],
)
def test_only_a_client_with_the_token_is_let_in(held_ray, tmp_path, token, accepted):
    with private_ray_env(tmp_path / "client-home") as env:  # a client with no ~/.ray of its own
        if token == "wrong":
            env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        elif token == "the cluster's":
            env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(held_ray.token)}
        proc = subprocess.run(
            [sys.executable, "-c", _CLIENT, held_ray.gcs],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
    if accepted:
        assert (proc.returncode, proc.stdout.strip()) == (0, "accepted"), proc.stderr[-2000:]
    else:
        assert proc.returncode == 3, (proc.stdout, proc.stderr[-2000:])
        assert "InvalidAuthToken" in proc.stdout


def test_the_private_ray_listens_on_loopback_only(held_ray):
    listening = _listening(held_ray.pids)
    # Not vacuous: the GCS, the raylet, the driver and a worker all listen.
    assert len({pid for pid, _, _ in listening}) >= 4, listening
    gcs_port = int(held_ray.gcs.rpartition(":")[2])
    assert gcs_port in {port for _, _, port in listening}
    outside = [(pid, str(ip), port) for pid, ip, port in listening if not _loopback(ip)]
    assert not outside, f"listening beyond 127.0.0.1: {outside}"


def _listening(pids: list[int]) -> list[tuple[int, IP, int]]:
    """(pid, address, port) of every listening TCP socket the processes hold, from /proc."""
    owner = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[len("socket:[") : -1]] = pid
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in owner:  # 0A: TCP_LISTEN
                hex_ip, hex_port = local.split(":")
                raw = bytes.fromhex(hex_ip)
                # /proc prints each 32-bit word of the address in host (little-endian) order.
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((owner[inode], ipaddress.ip_address(raw), int(hex_port, 16)))
    return found


def _loopback(ip: IP) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)  # [::ffff:127.0.0.1]: an IPv6 socket on 127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
