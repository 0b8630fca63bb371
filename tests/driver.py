"""A `poptune` driver process that a test can watch, signal and kill, as a user or a cloud would.

The driver runs in its own session (process group), so a test can send Ctrl-C to the group the
way a terminal does, and every process it started can be found by its parent chain while it
lives. Teardown stops exactly those pids, never anything found by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localray.processes import Pid, kill_pids, process_tree

POPTUNE = [sys.executable, "-m", "poptune"]

descendants = process_tree  # every live process below a pid, each with its start time


def alive(pids: list[int]) -> list[Pid]:
    """Those of ``pids`` still running (zombies count as gone). A :class:`Pid` from
    ``descendants`` stays gone once its process has exited, whoever gets its number next."""
    return [pid for pid in map(Pid.of, pids) if pid.running()]


@dataclass
class Driver:
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``done`` until true; fail naming ``what`` if the driver exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"driver exited ({self.proc.returncode}) before {what}:\n{self.output[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s} s:\n{self.output[-4000:]}")
            time.sleep(0.1)

    def wait_for_line(self, text: str, timeout_s: float) -> None:
        self.wait_for(lambda: text in self.output, timeout_s, repr(text))

    def signal_group(self, sig: signal.Signals) -> None:
        """What a terminal's Ctrl-C does: the signal to every process of the driver's group."""
        os.killpg(self.pid, sig)

    def finish(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout=timeout_s)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code

    def stop(self) -> None:
        """Kill the driver and whatever it started, by pid (a no-op once it has exited)."""
        kill_pids([*descendants(self.pid), self.pid] if self.proc.poll() is None else [])


def start_driver(*args: object, env: dict[str, str], cwd: Path) -> Driver:
    proc = subprocess.Popen(
        [*POPTUNE, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        start_new_session=True,
    )
    driver = Driver(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            driver.lines.append(line)

    driver._reader = threading.Thread(target=read, daemon=True)
    driver._reader.start()
    return driver
