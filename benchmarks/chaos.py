"""chaos: a search that keeps losing worker nodes, and the driver's memory over a long search.

(1) Node killer. Two local clusters alike, each a head (no CPUs for trials) and 3 one-CPU worker
nodes on 127.0.0.1, every node its own `ray start` with token auth (benchmarks/_chaos_nodes.py).
The same real `poptune search` (FIFO, every trial to its last epoch) runs on both at once; on
one of them a thread SIGKILLs a random worker node's raylet and its workers after exponential
waits (mean 20 s), and starts a replacement node at once. Afterwards
(benchmarks/_chaos_audit.py): every trial is accounted for exactly once, finished or errored
after its retries; a restart re-ran at most the epoch it was in; no finished trial ran again;
the Optuna study copy holds every trial once; `poptune analyze` succeeds. Figures: kills
survived, trials lost, finished trials run again, trials retried, epochs run again, and the
wall with kills against the wall without.

(2) Driver memory. poptune's driver over a long search of the surrogate trainable (sleeping
through short epochs, benchmarks/_surrogate.py) on a private local Ray advertising 32 CPUs, in a
process of its own (benchmarks/_chaos_memory.py): its RSS every 250 trials, and the growth per
1,000 trials as the slope of a line fitted after the warm-up; the object types and, with
tracemalloc, the lines whose allocations grew.

`python -m benchmarks chaos` runs the default size (25 to 40 minutes on 2 cores: 10,000 trials
for the memory); `python -m benchmarks.chaos --quick` a small one (printed, not recorded);
`--only memory` (or `nodes`) one part, `--record` to append its figures to RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._chaos_audit import Audit, audit, running_epochs
from benchmarks._chaos_memory import MemorySpec
from benchmarks._chaos_nodes import ChaosCluster, Kill, Killer, Node, chaos_cluster
from benchmarks._common import Figure, run_standalone
from benchmarks._scale_procs import run_alone, work_dir
from localray.env import private_ray_env
from localray.processes import kill_pids, process_tree

WORKERS = 3
TARGET_MB_PER_1000 = 5.0


@dataclass(frozen=True)
class ChaosSize:
    samples: int
    max_epochs: int
    rows: int  # --synthetic-rows: with max_epochs, how long a trial trains
    mean_kill_s: float
    min_kills: int  # the target
    timeout_s: float  # each search
    max_failures: int = 10  # a trial may be on a killed node several times in a long search
    # Kills paced by the search's progress instead of the clock (the test's mode, see
    # benchmarks/_chaos_nodes.Killer): a node is killed once a trial running on it has logged
    # this many epochs there; at most max_kills.
    kill_after_epochs: int | None = None
    max_kills: int | None = None


@dataclass(frozen=True)
class MemorySize:
    trials: int
    slots: int
    every: int
    warm_up: int  # a multiple of every
    timeout_s: float
    target: bool  # the target holds at 10,000 trials; a quick run only shows the trend


# Trials of 12 epochs: on a quiet 2-core machine 64 of them ran in ~3 minutes beside the calm
# search and saw only 5 kills at a mean of 20 s (each replacement takes ~6 s more); 128 trials
# at a mean of 12 s leave room for ~20 kills however loaded the machine is.
DEFAULT = ChaosSize(samples=128, max_epochs=12, rows=30_000, mean_kill_s=12, min_kills=10,
                    timeout_s=1800)  # fmt: skip
QUICK = ChaosSize(samples=12, max_epochs=10, rows=20_000, mean_kill_s=8, min_kills=2,
                  timeout_s=900)  # fmt: skip
# About 12 minutes on a quiet machine; on a busy shared one it has taken three times that.
MEMORY = MemorySize(trials=10_000, slots=32, every=250, warm_up=2_000, timeout_s=3600,
                    target=True)  # fmt: skip
MEMORY_QUICK = MemorySize(trials=1_500, slots=32, every=100, warm_up=500, timeout_s=900,
                          target=False)  # fmt: skip


# ------------------------------------------------------------------------- a search driver


@dataclass
class SearchRun:
    """One `poptune search` subprocess in a session of its own, its output in a log file."""

    proc: subprocess.Popen
    log: Path
    exp_dir: Path
    started: float  # time.monotonic()
    wall_s: float | None = None

    def wait(self, deadline: float) -> int:
        try:
            code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"search {self.exp_dir} ran past its time limit") from None
        self.wall_s = time.monotonic() - self.started
        if code not in (0, 3):  # 3: finished, some trials errored (after their retries)
            tail = "\n".join(self.log.read_text().splitlines()[-40:])
            raise RuntimeError(f"search {self.exp_dir} failed (exit {code}):\n{tail}")
        return code

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        """Kill the driver and whatever it started, by pid (nothing once it has exited)."""
        if self.proc.poll() is None:
            kill_pids([*process_tree(self.proc.pid), self.proc.pid])


def auth_env(token: Path) -> dict[str, str]:
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_ADDRESS": ""}


def start_search(cluster: ChaosCluster, storage: Path, size: ChaosSize, token: Path) -> SearchRun:
    args = ["search", "--address", cluster.address, "--storage", storage, "--name", "chaos",
            "--synthetic-rows", size.rows, "--num-samples", size.samples,
            "--max-epochs", size.max_epochs, "--scheduler", "fifo",
            "--max-failures", size.max_failures]  # fmt: skip
    storage.mkdir(parents=True, exist_ok=True)
    log = storage / "driver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "poptune", *map(str, args)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=storage,
            env={**os.environ, **auth_env(token)},
            start_new_session=True,
        )
    return SearchRun(proc, log, storage / "chaos", time.monotonic())


def wait_until_busy(cluster: ChaosCluster, run: SearchRun, timeout_s: float = 300) -> None:
    """Until a trial runs on a worker node: kills before that would only slow Ray's start."""
    deadline = time.monotonic() + timeout_s
    while not any(node.busy_workers() for node in cluster.nodes):
        if run.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no trial started on a worker node:\n{run.output()[-3000:]}")
        time.sleep(0.5)


# ----------------------------------------------------------------------- the node killer


@dataclass
class ChaosResult:
    size: ChaosSize
    kills: list[Kill]
    audit: Audit
    wall_s: float
    calm: Audit | None = None
    calm_wall_s: float | None = None
    analyze_code: int | None = None
    analyze_tail: str = ""
    driver_log: str = ""

    @property
    def busy_kills(self) -> int:
        return sum(bool(k.busy) for k in self.kills)


def live_result_files(cluster: ChaosCluster, run: SearchRun) -> list[Path]:
    """Each trial's result.json as Tune writes it now. Tune's driver writes it in its session's
    staging folder (Ray's temp dir, `artifacts/<time>/<name>/driver_artifacts/<trial>`) and
    copies it to the storage only when it saves the experiment state, every 10 s or more: the
    storage's copy would show a trial's progress too late to pace kills by it."""
    staged = cluster.head.temp_dir.glob(
        f"session_*/artifacts/*/{run.exp_dir.name}/driver_artifacts/*/result.json"
    )
    files = {path.parent.name: path for path in run.exp_dir.glob("*/result.json")}
    files.update({path.parent.name: path for path in staged})
    return list(files.values())


@contextlib.contextmanager
def killing(cluster: ChaosCluster, run: SearchRun, size: ChaosSize, seed: int) -> Iterator[Killer]:
    """A node killer on ``cluster`` from the first trial on, stopped (and joined) on exit: it
    must not start a node while the cluster goes down."""
    choose = None
    if size.kill_after_epochs is not None:
        need = size.kill_after_epochs

        def choose(nodes: list[Node]) -> Node | None:
            done = running_epochs(live_result_files(cluster, run), size.max_epochs)
            for node in nodes:
                node_id = node.worker.node_id()
                if any(done[(node_id, pid)] >= need for pid in node.busy_pids()):
                    return node
            return None

    killer = Killer(cluster, size.mean_kill_s, seed, max_kills=size.max_kills, choose=choose)
    wait_until_busy(cluster, run)
    killer.start()
    try:
        yield killer
    finally:
        with contextlib.suppress(RuntimeError):
            killer.finish()


def run_chaos(
    size: ChaosSize, work: Path, token: Path, *, calm: bool = True, seed: int = 0
) -> ChaosResult:
    """The search on a cluster that loses nodes and, with ``calm``, the same search on one
    that does not, started together; both audited, and the first analyzed."""
    deadline = time.monotonic() + size.timeout_s
    with contextlib.ExitStack() as stack:
        chaos = stack.enter_context(chaos_cluster(WORKERS, token))
        quiet = stack.enter_context(chaos_cluster(WORKERS, token)) if calm else None
        runs = [start_search(chaos, work / "killed", size, token)]
        if quiet is not None:
            runs.append(start_search(quiet, work / "calm", size, token))
        for run in runs:
            stack.callback(run.stop)
        with killing(chaos, runs[0], size, seed) as killer:
            runs[0].wait(deadline)
            kills = killer.finish()
        for run in runs[1:]:
            run.wait(deadline)
    result = ChaosResult(
        size, kills, audit(runs[0].exp_dir, size.samples, size.max_epochs), runs[0].wall_s or 0,
        driver_log=runs[0].output(),
    )  # fmt: skip
    if calm:
        result.calm = audit(runs[1].exp_dir, size.samples, size.max_epochs)
        result.calm_wall_s = runs[1].wall_s
    result.analyze_code, result.analyze_tail = analyze(runs[0].exp_dir, work)
    return result


def analyze(exp_dir: Path, work: Path) -> tuple[int, str]:
    """`poptune analyze` of the experiment (one finalist, one seed: whether it runs, not what it
    finds), with a HOME and Ray temp dir of its own in case it starts a local Ray."""
    with private_ray_env(work / "analyze-home") as env:
        proc = subprocess.run(
            [sys.executable, "-m", "poptune", "analyze", str(exp_dir), "--seeds", "1",
             "--finalists", "1"],
            capture_output=True, text=True, env=env, timeout=900,
        )  # fmt: skip
    return proc.returncode, (proc.stdout + proc.stderr)[-2000:]


def chaos_figures(result: ChaosResult) -> list[Figure]:
    a, size = result.audit, result.size
    problems = a.problems()
    gaps = [k.at_s for k in result.kills]
    mean_gap = (gaps[-1] / len(gaps)) if gaps else float("nan")
    replaced = sum(k.replaced_in_s for k in result.kills) / max(1, len(result.kills))
    figures = [
        Figure(
            "chaos: worker-node kills survived",
            len(result.kills),
            f">= {size.min_kills}",
            f"{result.busy_kills} of them while the node ran a trial; SIGKILL of the raylet and "
            f"its workers every {mean_gap:.0f} s on average (exponential, mean "
            f"{size.mean_kill_s:g} s), a replacement node up {replaced:.1f} s later on average; "
            f"{WORKERS} one-CPU worker nodes, {size.samples} trials × {size.max_epochs} epochs "
            f"(FIFO, {size.rows:,} rows, --max-failures {size.max_failures})",
        ),
        Figure(
            "chaos: trials lost",
            a.lost,
            "<= 0",
            f"{a.summary()}" + (f"; problems: {'; '.join(problems[:5])}" if problems else ""),
        ),
        Figure(
            "chaos: finished trials run again",
            a.repeated_finished,
            "<= 0",
            "a row after a trial's final epoch in its result.json",
        ),
        Figure(
            "chaos: study problems",
            len(a.study_problems),
            "<= 0",
            f"optuna_study.db holds {a.study_trials} trials for {size.samples} asked; each Tune "
            "trial matched to one by its params, in the state its end was told as"
            + (f": {'; '.join(a.study_problems[:5])}" if a.study_problems else ""),
        ),
        Figure(
            "chaos: trials retried",
            a.retried,
            "",
            f"{a.failures} failures in all, {a.statuses.get('ERROR', 0)} trial(s) errored after "
            f"its retries",
        ),
        Figure(
            "chaos: logged epochs run again",
            a.redone,
            "",
            f"worst restart re-ran {a.worst_rewind} logged epoch(s) (at most 1 allowed: the one "
            "in flight); every restart also re-runs the unlogged epoch it was in",
        ),
        Figure(
            "chaos: `poptune analyze` exit code",
            result.analyze_code if result.analyze_code is not None else -1,
            "<= 0",
            result.analyze_tail.strip().splitlines()[-1][:200] if result.analyze_tail else "",
        ),
    ]
    if result.calm is not None and result.calm_wall_s:
        figures.append(
            Figure(
                "chaos: search wall with kills / without",
                result.wall_s / result.calm_wall_s,
                "",
                f"{result.wall_s:.0f} s vs {result.calm_wall_s:.0f} s, started together on two "
                f"clusters alike; the calm one: {result.calm.summary()}",
            )
        )
    return figures


# ------------------------------------------------------------------------ driver memory


def run_memory(size: MemorySize, work: Path) -> dict[str, Any]:
    spec = MemorySpec(
        trials=size.trials,
        slots=size.slots,
        every=size.every,
        warm_up=size.warm_up,
        storage=str(work / "memory"),
        trace=False,
    )
    return run_alone("benchmarks._chaos_memory", spec, work, size.timeout_s)


def slope_per_1000(samples: list[dict[str, Any]], after: int) -> float:
    """Least-squares slope of RSS (MB) against trials, per 1,000 trials, over the samples at
    or after ``after`` trials."""
    points = [(s["trials"], s["rss_mb"]) for s in samples if s["trials"] >= after]
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return 1000 * sum((x - mx) * (y - my) for x, y in points) / sxx


def memory_figure(data: dict[str, Any], size: MemorySize) -> Figure:
    samples = data["samples"]
    slope = slope_per_1000(samples, size.warm_up)
    fitted = [s for s in samples if s["trials"] >= size.warm_up]
    warm, last = fitted[0], samples[-1]
    # The line's two ends as a check on it: growth from the warm-up's end to the last sample.
    straight = 1000 * (last["rss_mb"] - warm["rss_mb"]) / max(1, last["trials"] - warm["trials"])
    types = ", ".join(f"{k} +{n:,}" for k, n in data["types"][:6])
    return Figure(
        f"chaos driver memory: RSS growth per 1,000 trials ({size.trials:,} trials)",
        slope,
        f"<= {TARGET_MB_PER_1000:g}" if size.target else "",
        f"least-squares line over the {len(fitted)} samples (every {size.every:,} trials) from "
        f"{size.warm_up:,} trials on; driver RSS {data['rss_before_mb']:.0f} MB before the "
        f"search (Ray not started), {samples[0]['rss_mb']:.0f} MB at {samples[0]['trials']:,} "
        f"trials, {warm['rss_mb']:.0f} MB at {warm['trials']:,}, {last['rss_mb']:.0f} MB at "
        f"{last['trials']:,} ({straight:.1f} MB per 1,000 end to end after the warm-up); "
        f"search wall {data['wall_s']:.0f} s, {size.slots} slots, surrogate trials; Tune keeps "
        f"{last['tune_trials']:,} trials and {last['checkpoint_results']:,} checkpoint results "
        f"in memory ({last['checkpoint_results'] / max(1, last['tune_trials']):.2f} a trial); "
        f"objects gained after the warm-up by type: {types}",
        unit=" MB",
    )


# ------------------------------------------------------------------------------ the run


def write_token(work: Path) -> Path:
    token = work / "ray-token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return token


def run(quick: bool = False, parts: tuple[str, ...] = ("nodes", "memory")) -> list[Figure]:
    size, memory = (QUICK, MEMORY_QUICK) if quick else (DEFAULT, MEMORY)
    clock = time.perf_counter()
    figures: list[Figure] = []
    with work_dir() as work:
        if "nodes" in parts:
            result = run_chaos(size, work, write_token(work))
            _said(f"node killer done ({time.perf_counter() - clock:.0f} s)")
            figures += chaos_figures(result)
        if "memory" in parts:
            data = run_memory(memory, work)
            _said(f"driver memory done ({time.perf_counter() - clock:.0f} s)")
            figures.append(memory_figure(data, memory))
    return figures


def _said(line: str) -> None:
    print(f"chaos: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a small run (development)")
    parser.add_argument(
        "--only", choices=("nodes", "memory"), help="run one part: the node killer or the memory"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="append the figures to benchmarks/RESULTS.md as `python -m benchmarks` does "
        "(default size only)",
    )
    args = parser.parse_args(argv)
    if args.record and args.quick:
        parser.error("--record takes the default size only; a --quick run is printed")
    parts = (args.only,) if args.only else ("nodes", "memory")
    name = "chaos" if len(parts) > 1 else f"chaos ({args.only} only)"
    return run_standalone(name, lambda: run(quick=args.quick, parts=parts), record=args.record)


if __name__ == "__main__":
    sys.exit(main())
