"""What every benchmark shares: the machine line, the full-size data, and how a figure is shown.

These machines are shared and noisy, so absolute seconds do not compare between runs; every
figure is a ratio of two things measured side by side in the same run (docs/design.md). The load
average before and after each benchmark is recorded to say how busy the machine was.
"""

from __future__ import annotations

import argparse
import functools
import operator
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from poptune.data import Prepared, prepare, synthetic_tracks

# The Kaggle file's size: "full size" everywhere in the benchmarks.
FULL_ROWS = 232_725
SEED = 0


_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Figure:
    """One reported number: what it measures, its value, the target, and the raw numbers."""

    name: str
    value: float
    target: str  # "<= 0.5", ">= 0.85", "" when there is none
    detail: str
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        if op not in _COMPARE:
            raise ValueError(f"target {self.target!r}: the operator must be one of {_COMPARE}")
        return _COMPARE[op](self.value, float(bound))

    def line(self) -> str:
        verdict = {True: "target met", False: "TARGET MISSED", None: "no target"}[self.met]
        target = f" (target {self.target}; {verdict})" if self.target else ""
        return f"{self.name}: {self.value:.3g}{self.unit}{target}\n    {self.detail}"


def machine() -> str:
    """Cores, CPU model, torch threads and versions: printed with every result."""
    import optuna
    import ray

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {mem_gib:.0f} GiB, torch {torch.__version__} "
        f"(default {torch.get_num_threads()} threads), ray {ray.__version__}, "
        f"optuna {optuna.__version__}, Python {platform.python_version()}"
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def standalone_main(
    module: str,
    doc: str | None,
    run: Callable[..., list[Figure]],
    quick_help: str,
    argv: list[str] | None = None,
) -> int:
    """``python -m MODULE [--quick]``: one benchmark alone, its figures printed (not recorded)
    between the machine with its load before and the load after."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    return run_standalone(module.rsplit(".", 1)[-1], lambda: run(quick=args.quick), record=False)


def run_standalone(name: str, run: Callable[[], list[Figure]], *, record: bool) -> int:
    """One benchmark run alone (``python -m benchmarks.NAME``): the machine and its load, the
    figures, and with ``record`` the section `python -m benchmarks` would append to RESULTS.md."""
    header = f"{time.strftime('%Y-%m-%d %H:%M')} · {machine()}"
    before = load_average()
    print(f"{header}; {before}", flush=True)
    started = time.perf_counter()
    figures = run()
    seconds = time.perf_counter() - started
    for figure in figures:
        print(figure.line(), flush=True)
    after = load_average()
    print(f"({name}: {seconds:.0f} s; after: {after})", flush=True)
    if record:
        from benchmarks.__main__ import RESULTS, _append  # the entry point imports this module

        _append(header, [(name, figures, before, after, seconds)], seconds)
        print(f"appended to {RESULTS}")
    return 0


@functools.cache
def full_prepared(dedupe: str = "none") -> Prepared:
    """The full-size built-in data. ``dedupe="none"`` keeps 80% of 232,725 = 186,181 training
    rows, the reference study's protocol; ``"track_id"`` is what `poptune search` trains on."""
    return prepare(synthetic_tracks(FULL_ROWS, SEED), seed=SEED, dedupe=dedupe)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Timing:
    """Best wall time and best CPU time (this process's) over some runs. On a shared machine
    the CPU time is the steadier of the two: a neighbour that takes the core away adds wall
    time but no CPU time (it still costs caches and memory bandwidth)."""

    wall: float
    cpu: float


def measure(fn: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(frozen=True)
class Paired:
    """``a`` and ``b`` run back to back ``len(a)`` times (a, b, a, b, ...), so that a burst of
    load from another process hits both alike."""

    a: list[Timing]
    b: list[Timing]

    @property
    def ratio(self) -> float:
        """best a / best b: each at its least disturbed run."""
        return min(t.wall for t in self.a) / min(t.wall for t in self.b)

    @property
    def cpu_ratio(self) -> float:
        return min(t.cpu for t in self.a) / min(t.cpu for t in self.b)

    def pair_ratios(self) -> str:
        return ", ".join(f"{a.wall / b.wall:.3f}" for a, b in zip(self.a, self.b, strict=True))


def paired(a: Callable[[], object], b: Callable[[], object], repeats: int) -> Paired:
    runs = Paired([], [])
    for _ in range(repeats):
        runs.a.append(measure(a))
        runs.b.append(measure(b))
    return runs
