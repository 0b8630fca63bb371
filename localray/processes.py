"""Processes known by pid and start time, found by command line or descent, stopped by pid.

A process is known by its pid *and* its start time (:class:`Pid`): on a busy machine pids are
reused within a minute (pid_max may be 32768), and a pid alone would then name, and a kill hit,
somebody else's process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """Fields 3... of /proc/PID/stat ([0] state, [1] ppid, [19] start time), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


class Pid(int):
    """A pid that remembers when its process started (clock ticks after boot), so that it never
    names a later process that was given the same number."""

    started: int | None

    def __new__(cls, pid: int, started: int | None) -> Pid:
        self = super().__new__(cls, pid)
        self.started = started
        return self

    @classmethod
    def of(cls, pid: int) -> Pid:
        """``pid`` as it is now: the process running under that number, if any."""
        if isinstance(pid, Pid):
            return pid
        fields = _stat(pid)
        return cls(pid, int(fields[19]) if fields else None)

    def running(self) -> bool:
        """This very process still runs (a zombie has finished)."""
        fields = _stat(self)
        return (
            fields is not None
            and fields[0] != "Z"
            and self.started is not None
            and int(fields[19]) == self.started
        )


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                found[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return found


def _below(roots: set[int], procs: dict[int, tuple[int, int]]) -> set[int]:
    found = set(roots)
    grew = True
    while grew:
        children = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        found |= children
        grew = bool(children)
    return found


def process_tree(root: int) -> list[Pid]:
    """Every process below ``root`` in the parent chain."""
    procs = process_table()
    return [Pid(pid, procs[pid][1]) for pid in sorted(_below({root}, procs) - {root})]


def cluster_pids(marker: str, port: int) -> list[Pid]:
    """Processes whose command line names ``marker`` or ``:port``, and all their descendants."""
    procs = process_table()
    roots = set()
    for pid in procs:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        text = cmdline.decode(errors="replace")
        if pid != os.getpid() and (marker in text or f":{port} " in text + " "):
            roots.add(pid)
    return [Pid(pid, procs[pid][1]) for pid in sorted(_below(roots, procs))]


def marked_pids(marker: str) -> list[int]:
    """Processes whose command line contains ``marker``, and all their descendants."""
    roots = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                roots.append(int(entry.name))
    found = set(roots)
    for root in roots:
        found.update(process_tree(root))
    return sorted(found)


def kill_pids(pids: list[int], grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``, to those of ``pids`` still running. A plain int
    names the process that has that pid now; a :class:`Pid` only the process it was taken of."""
    procs = [Pid.of(pid) for pid in pids]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            if proc.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(proc.running() for proc in procs):
            time.sleep(0.1)
