"""Where a simulated search's wall goes: a Tune callback that records every epoch, and the split
of the search's wall into ramp-up, steady state and tail against the ideal Σ trial time / slots.

Epoch intervals come from the workers' clocks (``ended_at`` and ``seconds`` in each result, as
the surrogate and poptune's trainable report them), so a driver that is slow to read a result
does not move the epoch; the search's start and end are the driver's (all on one machine here).
A trial runs from its first epoch's start to its last epoch's end; a slot is busy while it is
inside an epoch (the moments between two epochs of a trial, spent reporting and checkpointing,
are idle: they are overhead too).

- ramp-up: from the search's start until as many trials run at once as there are slots (a
  search that never gets there: until it first reached its peak);
- tail: from the last trial's first epoch to the end: no trial is left to start, slots drain;
- steady state: in between.

``wall × slots = busy + idle`` slot-seconds, so ``wall − ideal = idle / slots``, and each phase's
idle slot-seconds / slots is its share of the excess over the ideal.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ray.tune import Callback


@dataclass(frozen=True)
class Epoch:
    trial_id: str
    pid: int
    began: float
    ended: float


@dataclass(frozen=True)
class WorkerStart:
    """How a worker's first trial got going: its process forked by Ray, the trial function
    entered (Python, imports, Tune's trainable set up), the first epoch begun."""

    forked: float
    entered: float
    began: float


@dataclass
class ScaleClock(Callback):
    """Records epochs, trial counts, the driver's CPU from Tune's start to its end, and the CPU
    of the Ray processes below the driver (a private local Ray's), sampled every few seconds."""

    started: float = 0.0
    ended: float = 0.0
    cpu_started: float = 0.0
    cpu_ended: float = 0.0
    results: int = 0
    trials_done: int = 0
    epochs: list[Epoch] = field(default_factory=list)
    worker_starts: dict[int, WorkerStart] = field(default_factory=dict)  # by pid: first trial
    # pid -> (kind, CPU seconds at the search's start or 0 if started later, at the last sample)
    ray_processes: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    _sampled: float | None = None

    def setup(self, **info) -> None:
        self.started = time.time()
        self.cpu_started = time.process_time()
        self._sample()

    def on_step_end(self, iteration, trials, **info) -> None:
        if self._sampled is not None and time.monotonic() - self._sampled > SAMPLE_EVERY_S:
            self._sample()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.results += 1
        ended = float(result.get("ended_at", time.time()))
        began = ended - float(result.get("seconds", 0.0))
        pid = int(result.get("pid", 0))
        self.epochs.append(Epoch(trial.trial_id, pid, began, ended))
        if pid not in self.worker_starts and "process_started_at" in result:
            self.worker_starts[pid] = WorkerStart(
                result["process_started_at"], result["entered_at"], began
            )

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.trials_done += 1

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.trials_done += 1

    def on_experiment_end(self, trials, **info) -> None:
        self.ended = time.time()
        self.cpu_ended = time.process_time()
        self._sample()

    @property
    def driver_cpu_s(self) -> float:
        return self.cpu_ended - self.cpu_started

    def ray_cpu_s(self) -> dict[str, float]:
        """CPU seconds Ray's processes spent during the search, by kind (a process that exited
        between two samples misses up to one interval of its CPU)."""
        out: dict[str, float] = {}
        for kind, first, last in self.ray_processes.values():
            out[kind] = out.get(kind, 0.0) + last - first
        return out

    def _sample(self) -> None:
        baseline = self._sampled is None
        for pid, (kind, cpu) in ray_processes().items():
            seen = self.ray_processes.get(pid)
            first = seen[1] if seen else (cpu if baseline else 0.0)
            self.ray_processes[pid] = (kind, first, cpu)
        self._sampled = time.monotonic()


SAMPLE_EVERY_S = 5.0


def ray_processes() -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds so far) of every process below this one: a private local Ray's
    GCS, raylet and workers (by their process names), and "other" (its agents, monitors)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                head, _, rest = (entry / "stat").read_text().rpartition(")")
                fields = rest.split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
                procs[int(entry.name)] = (int(fields[1]), head.split("(", 1)[1], cpu)
            except (OSError, IndexError, ValueError):
                continue
    below, grew = {os.getpid()}, True
    while grew:
        children = {pid for pid, (ppid, _, _) in procs.items() if ppid in below} - below
        below |= children
        grew = bool(children)
    out = {}
    for pid in below - {os.getpid()}:
        _, name, cpu = procs[pid]
        if name in ("gcs_server", "raylet"):
            out[pid] = (name, cpu)
        else:
            out[pid] = ("workers" if name.startswith("ray::") else "other", cpu)
    return out


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float
    busy: float  # slot-seconds spent inside epochs
    slots: int

    @property
    def wall(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def idle_per_slot(self) -> float:
        """This phase's seconds of wall beyond its busy share: its part of wall − ideal."""
        return self.wall - self.busy / self.slots

    @property
    def utilisation(self) -> float:
        return self.busy / (self.wall * self.slots) if self.wall > 0 else 0.0


@dataclass(frozen=True)
class Span:
    """One trial, from its first epoch's start to its last epoch's end."""

    began: float
    ended: float


def trial_spans(epochs: list[Epoch]) -> dict[str, Span]:
    spans: dict[str, Span] = {}
    for e in epochs:
        seen = spans.get(e.trial_id)
        spans[e.trial_id] = (
            Span(e.began, e.ended)
            if seen is None
            else Span(min(seen.began, e.began), max(seen.ended, e.ended))
        )
    return spans


def _running(spans: list[Span]) -> list[tuple[float, int]]:
    """(time, trials running just after it), at every trial start and end. An end sorts before
    a start at the same instant: a slot handed from one trial to the next is not double-booked."""
    events = sorted([(s.began, 1) for s in spans] + [(s.ended, -1) for s in spans])
    out, running = [], 0
    for at, step in events:
        running += step
        out.append((at, running))
    return out


def first_reached(spans: list[Span], count: int) -> float | None:
    """When ``count`` trials first ran at once; None if they never did."""
    return next((at for at, running in _running(spans) if running >= count), None)


def peak_concurrency(spans: list[Span]) -> int:
    """The most trials that ran at the same instant."""
    return max((running for _, running in _running(spans)), default=0)


@dataclass(frozen=True)
class RampUp:
    """How a search filled its slots."""

    first_start: float | None  # the first epoch of the search began
    all_busy: float | None  # every slot first ran a trial; None if that never happened
    peak: int  # the most trials that ever ran at once
    peak_at: float | None  # when the search first ran ``peak`` trials

    @property
    def seconds(self) -> float | None:
        """From the first trial's start until every slot runs a trial."""
        if self.first_start is None or self.all_busy is None:
            return None
        return self.all_busy - self.first_start


def ramp_up(epochs: list[Epoch], slots: int) -> RampUp:
    spans = list(trial_spans(epochs).values())
    peak = peak_concurrency(spans)
    return RampUp(
        first_start=min((s.began for s in spans), default=None),
        all_busy=first_reached(spans, slots),
        peak=peak,
        peak_at=first_reached(spans, peak) if peak else None,
    )


def _busy_between(epochs: list[Epoch], start: float, end: float) -> float:
    return sum(max(0.0, min(e.ended, end) - max(e.began, start)) for e in epochs)


def phases(epochs: list[Epoch], slots: int, started: float, ended: float) -> list[Phase]:
    """Ramp-up, steady state and tail of a search (see the module's docstring). The three
    phases tile [started, ended], so their idle seconds per slot add up to wall − ideal."""
    spans = trial_spans(epochs).values()
    last_start = max((s.began for s in spans), default=started)
    ramp = ramp_up(epochs, slots)
    filled = ramp.all_busy if ramp.all_busy is not None else ramp.peak_at
    ramp_end = min(filled if filled is not None else last_start, last_start)
    ramp_end = max(ramp_end, started)
    last_start = min(max(last_start, ramp_end), ended)
    bounds = [("ramp-up", started, ramp_end), ("steady", ramp_end, last_start),
              ("tail", last_start, ended)]  # fmt: skip
    return [Phase(n, a, b, _busy_between(epochs, a, b), slots) for n, a, b in bounds]
