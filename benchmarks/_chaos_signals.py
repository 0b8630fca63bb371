"""Ctrl-C, SIGTERM and SIGUSR1 at every phase of a poptune command, and the command it prints.

Each case starts a real `poptune search` or `poptune run` in a session of its own, with its own
private local Ray (:func:`localray.env.private_ray_env`: its own Ray temp dir, so that its
processes are found and stopped by pid), waits for a condition that marks the phase (a Ray
process appearing, a line on stdout, a file in the experiment), sends the signal the way it
arrives in real life (Ctrl-C: to the whole process group, as a terminal does; SIGTERM and SIGUSR1:
to the driver alone, as a scheduler, `docker stop` or SLURM's `--signal` do), and records the
exit code. It then runs the command the driver printed and checks that it completes the job:
every trial finished for a search, ``analysis/metrics.json`` and ``best_config.json`` for a run.

:func:`signal_matrix` returns one row per case; nothing here sleeps to synchronise: every wait is
a condition polled against a deadline.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localray.env import private_ray_env
from localray.processes import Pid, kill_pids, marked_pids, process_tree

EXIT_INTERRUPTED = 130  # docs/errors.md
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
# Trials long enough that a signal sent at a phase's marker lands inside that phase: with
# 60,000 rows x 12 epochs the eight trials take tens of seconds on 2 slots.
LONG_SEARCH = ("--synthetic-rows", "60000", "--num-samples", "8", "--max-epochs", "12",
               "--scheduler", "fifo")  # fmt: skip
# A search that is over in seconds, so that `poptune run` reaches its analysis soon; the
# analysis (finalists retrained with 3 seeds, baselines, plots) then takes tens of seconds.
SHORT_SEARCH = ("--synthetic-rows", "3000", "--num-samples", "4", "--max-epochs", "3")
PHASE_TIMEOUT_S = 900  # bounds on a loaded 2-core machine (a whole search and more), not targets
EXIT_TIMEOUT_S = 180
FINISH_TIMEOUT_S = 600
RAY_GONE_WITHIN_S = 90  # Ray's agents take up to ~60 s to notice a dead raylet


@dataclass
class Driver:
    proc: subprocess.Popen
    log: Path
    exp_dir: Path
    ray_marker: str  # the driver's own Ray temp dir, on its Ray processes' command lines

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def exited(self) -> bool:
        return self.proc.poll() is not None


@dataclass(frozen=True)
class Phase:
    """Where a signal lands: the command, and when it is in that phase (and no longer is)."""

    name: str
    command: str  # "search" or "run"
    args: tuple[str, ...]
    reached: Callable[[Driver], bool]
    passed: Callable[[Driver], bool]  # the next phase has begun: the signal came too late


def _ray_starting(driver: Driver) -> bool:
    """The driver's own Ray is being started: a process of it runs (the search has not begun).
    Ray's GCS and raylet are not the driver's children (Ray detaches them): they are found by
    the Ray temp dir on their command lines."""
    return bool(marked_pids(driver.ray_marker))


def _line(text: str) -> Callable[[Driver], bool]:
    return lambda driver: text in driver.output()


def _file(pattern: str) -> Callable[[Driver], bool]:
    return lambda driver: any(driver.exp_dir.glob(pattern))


PHASES = (
    Phase("ray start", "search", LONG_SEARCH, _ray_starting, _line("trial(s) at once")),
    Phase("first trials", "search", LONG_SEARCH, _file("*/checkpoint_000000"), _line("[  1/")),
    Phase("steady state", "search", LONG_SEARCH, _line("[  2/8]"), _line("search done")),
    Phase(
        "finalists",
        "run",
        SHORT_SEARCH,
        _line("re-evaluating the finalists"),
        _line("training and scoring the baselines"),
    ),
    Phase(
        "report",
        "run",
        SHORT_SEARCH,
        _file("analysis/model/bundle.json"),
        _file("analysis/metrics.json"),
    ),
)


def signal_matrix(
    work: Path,
    token: Path,
    *,
    phases: tuple[Phase, ...] = PHASES,
    signals: tuple[signal.Signals, ...] = SIGNALS,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Every phase × signal case; per case: phase, signal, exit code, expected code, whether
    the printed command completed the job, the walls, and what went wrong if anything did."""
    rows = []
    for phase in phases:
        for sig in signals:
            case = work / f"{phase.name.replace(' ', '-')}-{sig.name}"
            row = run_case(phase, sig, case, token)
            log(json.dumps(row))
            rows.append(row)
    return rows


def run_case(phase: Phase, sig: signal.Signals, case: Path, token: Path) -> dict:
    case.mkdir(parents=True, exist_ok=True)
    storage = case / "runs"
    with private_ray_env(case / "home") as env:
        env["RAY_AUTH_TOKEN_PATH"] = str(token)  # the caller's token: no new one per case
        marker = env["RAY_TMPDIR"]
        started = time.monotonic()
        args = (*phase.args, "--storage", storage, "--name", "sig")
        driver = _start(phase.command, args, env, case, storage / "sig", marker)
        row: dict = {"phase": phase.name, "signal": sig.name, "expected": EXIT_INTERRUPTED}
        try:
            _wait(lambda: phase.reached(driver), driver, PHASE_TIMEOUT_S, phase.name)
            late = phase.passed(driver)
            if sig == signal.SIGINT:
                os.killpg(driver.proc.pid, sig)  # a terminal's Ctrl-C: the whole group
            else:
                driver.proc.send_signal(sig)
            signalled = time.monotonic()
            try:
                code = driver.proc.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None  # it hangs: the worst answer to a signal
            row |= {"exit": code, "late": late, "exit_s": round(time.monotonic() - signalled, 1)}
            row["ray_left"] = _ray_left(marker)
            output = driver.output()
            row["message"] = _last_poptune_line(output)
            command = printed_command(output)
            row["command"] = shlex.join(command) if command else None
            row["resumed_ok"] = False
            if code is not None and command:
                finish = subprocess.run(
                    [sys.executable, "-m", "poptune", *command[1:]],
                    capture_output=True,
                    text=True,
                    cwd=case,
                    env=env,
                    timeout=FINISH_TIMEOUT_S,
                )
                (case / "finish.log").write_text(finish.stdout + finish.stderr)
                row["finish_exit"] = finish.returncode
                row["resumed_ok"] = finish.returncode == 0 and _complete(phase, storage / "sig")
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            row["error"] = str(exc)[-500:]
        finally:
            if driver.proc.poll() is None:
                kill_pids([*process_tree(driver.proc.pid), driver.proc.pid])
            kill_pids(marked_pids(marker))
            # What a driver killed outright leaves behind (the analysis's retrain workers):
            # known by their working directory, the case's own.
            left = _working_in(case)
            row["left_behind"] = len(left)
            kill_pids(left)
        row["wall_s"] = round(time.monotonic() - started, 1)
    return row


def printed_command(output: str) -> list[str] | None:
    """The command a driver printed to continue (a line of its own, indented: ``  poptune …``,
    or after ``resume with:`` in a one-line error), as argv; None if it printed none."""
    found = None
    for line in output.splitlines():
        if line.startswith("  poptune "):
            found = line.strip()
        elif "resume with: poptune " in line:
            found = line.split("resume with: ", 1)[1].strip()
    return shlex.split(found) if found else None


def _start(command: str, args: tuple, env: dict, cwd: Path, exp_dir: Path, marker: str) -> Driver:
    log = cwd / "driver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poptune", command, *map(str, args)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own process group, as a terminal's job has
            # A terminal's job gets Ctrl-C; one started from a background shell would inherit
            # SIGINT ignored, and Python would never see it.
            preexec_fn=_default_sigint,
        )
    return Driver(proc, log, exp_dir, marker)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait(done: Callable[[], bool], driver: Driver, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if driver.exited():
            raise AssertionError(f"exited ({driver.proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s")
        time.sleep(0.05)


def _ray_left(marker: str) -> int:
    """How many of the driver's Ray processes outlive it by more than RAY_GONE_WITHIN_S."""
    deadline = time.monotonic() + RAY_GONE_WITHIN_S
    left = [Pid.of(p) for p in marked_pids(marker)]
    while (left := [p for p in left if p.running()]) and time.monotonic() < deadline:
        time.sleep(0.5)
    return len(left)


def _working_in(folder: Path) -> list[int]:
    """The processes (other than this one) whose working directory is ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _last_poptune_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("poptune: ")]
    return lines[-1][:300] if lines else output[-300:]


def _complete(phase: Phase, exp_dir: Path) -> bool:
    """The job the interrupted command had to do is done."""
    if phase.command == "run":
        try:
            json.loads((exp_dir / "analysis" / "metrics.json").read_text())
            json.loads((exp_dir / "best_config.json").read_text())
        except (OSError, ValueError):
            return False
        return True
    from poptune.driver.resume import saved_trial_counts

    try:
        saved = saved_trial_counts(str(exp_dir))
    except Exception:  # no experiment at all: the printed command did not make one
        return False
    return saved.trials == 8 and saved.terminated == 8


def main() -> None:
    """Run the matrix (or `PHASE` names given as arguments) into a temporary work dir."""
    import secrets
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="poptune-signals-"))
    token = work / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    wanted = set(sys.argv[1:])
    phases = tuple(p for p in PHASES if not wanted or p.name.replace(" ", "-") in wanted)
    rows = signal_matrix(work, token, phases=phases)
    ok = sum(r.get("exit") == r["expected"] and r.get("resumed_ok") for r in rows)
    print(f"{ok}/{len(rows)} cases exited {EXIT_INTERRUPTED} and were completed; in {work}")


if __name__ == "__main__":
    main()
