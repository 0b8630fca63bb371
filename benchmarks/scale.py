"""scale: poptune's search driver at 32 and 64 slots against Ray's plain wiring, on one machine.

A surrogate trial (benchmarks/_surrogate.py) sleeps through each epoch (1–4 s, drawn per trial
on a log scale) and reports a learnable curve, so that a 2-core machine can hold a search of 32
or 64 slots: a private local Ray advertises that many logical CPUs. Everything of the driver is
real: TPE and its study, ASHA (grace 2, up to 12 epochs), the callbacks, Tune's loop, a
checkpoint per epoch and the experiment's files. The same search runs through

- poptune: `run_search` (its OptunaSearch subclass over a windowed TPE and a SQLite study,
  newest-first ASHA, progress and TensorBoard callbacks, the concurrency limit); and
- plain Ray: a Tuner with Ray's OptunaSearch and ASHA, Tune's default loggers and checkpoints,
  no concurrency limit,

side by side (started together, each in a process of its own: a burst of load hits both). Each
search's wall is set against the ideal Σ epoch seconds / slots and split into ramp-up, steady
state and tail (benchmarks/_timeline.py). Then, alone: the ramp-up on a private local Ray, and
on a head started here that the search joins with `--address`, next to the least Ray Tune
itself needs to start as many trials there (random search, no scheduler, every slot asked for at
once: the floor under any Tune search's ramp-up; run before and after poptune's) and how long
Ray takes to start as many one-CPU actors.

Figures: (a) wall / ideal for both, and poptune / plain; (b) ramp-up, local and joined, and
poptune's joined ramp-up against Tune's own; (c) the driver's CPU per result and per trial;
(d) the searcher's share of the driver's CPU; (e) (a), (c) and (d) again at twice the slots,
and the trend of the steady state.

`python -m benchmarks scale` runs the default size (32 slots × 2,000 trials, 64 slots × 640;
about 31 minutes on 2 cores); `python -m benchmarks.scale --quick` a small one for development
(300 trials at each size; about 8 minutes on an idle 2-core machine), printed, not recorded.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import Figure, standalone_main
from benchmarks._ray_floor import FloorSpec
from benchmarks._scale_procs import own_head, run_alone, started, work_dir
from benchmarks._scale_run import RunSpec

EPOCH_S = (1.0, 4.0)
TARGET_RATIO = 0.8  # poptune's wall / plain Ray's at the same slots and trials
# poptune's ramp-up on a joined cluster / Ray Tune's own there. Tune's own search, twice on the
# same 2-core head: 31.7 and 29.6 s from Tune's start to all 32 slots running (7% apart).
RAMP_TOLERANCE = 1.1
# The searcher's share of the driver's CPU is held to 10% in searches of this many trials.
SHARE_FROM_TRIALS = 2000


@dataclass(frozen=True)
class Size:
    slots: int
    trials: int
    trend_trials: int  # at twice the slots
    ramp_trials: int  # the ramp-up searches (alone, local and joined): a few per slot
    timeout_s: float  # any one search process


# About 31 minutes on 2 cores (measured). At 32 slots 2,000 trials averaged 5.2 epochs (ASHA)
# of 2.1 s (log-uniform in 1–4 s): an ideal of 11.5 minutes, poptune's wall 13.5, and plain Ray
# runs 1 / 0.8 times as long (see pair()): 17 minutes; 64 × 640 (10 a slot) 5.5 more, the
# ramp-up searches 6 (Tune's own, twice, starts a worker a trial: 64). Ramp-up searches: 2 trials
# per slot, or the first trials may end before the last slots start.
DEFAULT = Size(slots=32, trials=2000, trend_trials=640, ramp_trials=64, timeout_s=1800)
QUICK = Size(slots=32, trials=300, trend_trials=300, ramp_trials=64, timeout_s=900)


@dataclass(frozen=True)
class Search:
    """One search's JSON (benchmarks/_scale_run.py) and the figures read from it."""

    data: dict[str, Any]

    @property
    def wiring(self) -> str:
        return self.data["spec"]["wiring"]

    @property
    def slots(self) -> int:
        return self.data["spec"]["slots"]

    @property
    def asked(self) -> int:
        return self.data["spec"]["trials"]

    @property
    def complete(self) -> bool:
        """Every trial asked for ran (else the time budget stopped it)."""
        return self.data["trials_done"] >= self.asked

    @property
    def wall_s(self) -> float:
        return self.data["wall_s"]

    @property
    def ideal_s(self) -> float:
        return self.data["busy_s"] / self.slots

    @property
    def over_ideal(self) -> float:
        return self.wall_s / self.ideal_s

    def phase(self, name: str) -> dict[str, float]:
        return next(p for p in self.data["phases"] if p["name"] == name)

    @property
    def steady_busy(self) -> float:
        return self.phase("steady")["utilisation"]

    @property
    def ramp_s(self) -> float | None:
        return self.data["ramp_up_s"]

    @property
    def driver_ms_per_result(self) -> float:
        return 1000 * self.data["driver_cpu_s"] / max(1, self.data["results"])

    @property
    def driver_ms_per_trial(self) -> float:
        return 1000 * self.data["driver_cpu_s"] / max(1, self.data["trials"])

    def share(self, group: str) -> float:
        return self.data["method_cpu_s"].get(group, 0.0) / self.data["driver_cpu_s"]

    def shape(self) -> str:
        """The numbers behind a figure, in one line."""
        d = self.data
        ramp = f"{self.ramp_s:.1f} s" if self.ramp_s is not None else "never all slots"
        done = "" if self.complete else f" (its time budget stopped it at {d['trials_done']})"
        return (
            f"{d['trials_done']} trials{done}, {d['results']} epochs, wall {self.wall_s:.0f} s vs "
            f"ideal {self.ideal_s:.0f} s; ramp-up {self.phase('ramp-up')['wall']:.1f} s "
            f"(first trial start → all {self.slots} slots running: {ramp}; peak "
            f"{d['peak_concurrency']} at once), steady {self.phase('steady')['wall']:.0f} s at "
            f"{self.steady_busy:.0%} busy, tail {self.phase('tail')['wall']:.1f} s; excess over "
            "ideal by phase " + ", ".join(f"{p['idle_per_slot']:.1f}" for p in d["phases"]) + " s"
        )

    def start_path(self) -> str:
        """When the first workers' first trials got going, first and last of them, from Tune's
        start: as many workers as slots (a search that does not reuse workers starts more)."""
        starts = self.data.get("worker_starts") or {}
        if not starts.get("forked"):
            return ""
        first = {key: times[: self.slots] for key, times in starts.items()}
        parts = [
            f"{what} {first[key][0]:.1f}–{first[key][-1]:.1f} s"
            for what, key in (
                (f"Ray forked the first {len(first['forked'])} workers", "forked"),
                ("their trial functions began", "entered"),
                ("their first epochs", "began"),
            )
        ]
        return "; " + ", ".join(parts) + " after Tune's start"

    def costs(self) -> str:
        d, cpu = self.data, self.data["method_cpu_s"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        ray = ", ".join(f"{k} {v:.0f}" for k, v in sorted(d["ray_cpu_s"].items()))
        return (
            f"driver CPU {d['driver_cpu_s']:.1f} s ({parts} s in its main thread); "
            f"Ray's processes {ray} CPU s; {d['workers']} worker processes"
        )


def spec(wiring: str, slots: int, trials: int, work: Path, **more: Any) -> RunSpec:
    return RunSpec(
        wiring=wiring,
        slots=slots,
        trials=trials,
        epoch_s_min=EPOCH_S[0],
        epoch_s_max=EPOCH_S[1],
        storage=str(work / f"{wiring}-{slots}-{trials}"),
        **more,
    )


def pair(slots: int, trials: int, work: Path, size: Size) -> tuple[Search, Search]:
    """poptune and plain Ray, started together. Plain Ray's wiring starts one trial at a time,
    each in a new worker process, and may take far longer than the benchmark can wait: once
    poptune has finished, plain Ray is told to stop at poptune's wall / 0.8 (a little after).
    If it is still running then, poptune / plain < 0.8 is measured, not extrapolated: its
    figure is then poptune's wall over plain's wall so far, a bound said as such."""
    stop_file = work / f"stop-plain-{slots}"
    runs = [
        spec("poptune", slots, trials, work),
        spec("plain", slots, trials, work, stop_file=str(stop_file)),
    ]
    with started("benchmarks._scale_run", runs, work, size.timeout_s) as (ours, plain):
        poptune = Search(ours.result())
        stop_file.write_text(f"{poptune.wall_s / TARGET_RATIO * 1.02:.1f}")
        return poptune, Search(plain.result())


def comparison(poptune: Search, plain: Search) -> list[Figure]:
    """Figures (a), (c) and (d) at one size."""
    at = f"scale {poptune.slots} slots × {poptune.asked} trials"
    searcher_s = poptune.data["method_cpu_s"].get("searcher", 0.0)
    if plain.complete:
        versus = f"poptune {poptune.wall_s:.0f} s, plain Ray {plain.wall_s:.0f} s"
    else:
        rate = max(plain.data["trials_done"], 1) / plain.wall_s
        versus = (
            f"poptune {poptune.wall_s:.0f} s for all {poptune.asked} trials; plain Ray was "
            f"stopped at {plain.wall_s:.0f} s with {plain.data['trials_done']} done (its whole "
            "wall is longer, so the ratio is lower than this bound; at its average pace of "
            f"{rate:.2f} trials/s it would need ~{plain.asked / rate:.0f} s, a ratio of "
            f"~{poptune.wall_s * rate / plain.asked:.2f})"
        )
    return [
        Figure(f"{at}: poptune wall / ideal", poptune.over_ideal, "", poptune.shape()),
        Figure(f"{at}: plain Ray wall / ideal", plain.over_ideal, "", plain.shape()),
        Figure(
            f"{at}: poptune / plain Ray wall",
            poptune.wall_s / plain.wall_s,
            f"<= {TARGET_RATIO}",
            versus,
        ),
        Figure(
            f"{at}: poptune steady-state busy share",
            poptune.steady_busy,
            ">= 0.9",
            f"plain Ray {plain.steady_busy:.0%}",
        ),
        Figure(
            f"{at}: poptune driver CPU per result",
            poptune.driver_ms_per_result,
            "",
            f"{poptune.driver_ms_per_trial:.0f} ms per trial "
            f"({poptune.data['results'] / poptune.data['trials']:.1f} epochs a trial); plain Ray "
            f"{plain.driver_ms_per_result:.1f} ms per result, {plain.driver_ms_per_trial:.0f} ms "
            f"per trial. poptune: {poptune.costs()}. Plain Ray: {plain.costs()}",
            unit=" ms",
        ),
        Figure(
            f"{at}: searcher's share of poptune's driver CPU",
            poptune.share("searcher"),
            "<= 0.1" if poptune.asked >= SHARE_FROM_TRIALS else "",
            f"{searcher_s:.1f} of {poptune.data['driver_cpu_s']:.1f} CPU s, "
            f"{1000 * searcher_s / poptune.data['trials']:.0f} ms a trial; plain Ray's searcher "
            f"{plain.share('searcher'):.0%} of its driver's (the target is for searches of "
            f"{SHARE_FROM_TRIALS:,} trials or more: until TPE's window is full, the first ~300 "
            "trials, every suggestion is a fit of its own)",
        ),
    ]


def trend(small: Search, large: Search) -> Figure:
    """(e): poptune's steady state at twice the slots. Its wall / ideal is shown too, but at
    fewer trials per slot the ramp-up and tail weigh more in it, so the steady state decides."""
    return Figure(
        f"scale trend: poptune steady busy share at {large.slots} ÷ at {small.slots} slots",
        large.steady_busy / small.steady_busy,
        ">= 0.97",
        f"{large.steady_busy:.1%} at {large.slots} slots × {large.asked} trials, "
        f"{small.steady_busy:.1%} at {small.slots} × {small.asked} (target: no worse, within "
        f"3% run-to-run noise); wall / ideal {large.over_ideal:.2f} vs {small.over_ideal:.2f}; "
        f"driver CPU per result {large.driver_ms_per_result:.1f} vs "
        f"{small.driver_ms_per_result:.1f} ms; searcher share {large.share('searcher'):.0%} vs "
        f"{small.share('searcher'):.0%}",
    )


def ramp_figures(
    local: Search, joined: Search, tune_own: list[Search], floor: dict[str, Any]
) -> list[Figure]:
    """(b): first trial start → every slot running a trial, each search alone on the machine;
    and on the joined head, against the least Ray Tune itself needs to do the same (run before
    and after poptune's search: the mean of the two is the floor)."""
    slots = joined.slots
    tune, bare = floor["tune"], floor["bare"]

    def value(s: Search, whole: bool = False) -> float:
        """First trial start (or Tune's start, ``whole``) → every slot running a trial."""
        if s.ramp_s is None:
            return float("inf")
        return s.ramp_s + (s.data["first_start_s"] if whole else 0.0)

    def said(s: Search) -> str:
        if s.ramp_s is None:
            head = f"never all {slots} slots (peak {s.data['peak_concurrency']})"
        else:
            head = f"{s.ramp_s:.1f} s"
        return (
            f"{head}; {s.data['first_start_s']:.1f} s from Tune's start to the first epoch"
            + s.start_path()
        )

    ours = value(joined, whole=True)
    # Infinite if a Tune search never filled its slots: no floor, so no ratio and no target met.
    tunes = sum(value(s, whole=True) for s in tune_own) / len(tune_own)
    return [
        Figure(
            f"scale ramp-up, private local Ray, {slots} slots",
            value(local),
            "",
            f"{said(local)} ({local.asked} trials, alone on the machine)",
            unit=" s",
        ),
        Figure(
            f"scale ramp-up, joined cluster (--address), {slots} slots",
            value(joined),
            "<= 10",
            f"{said(joined)} ({joined.asked} trials, alone on the machine); Ray Tune's own "
            "search on that head, before and after: "
            + ", ".join(f"{value(s):.1f} s" for s in tune_own),
            unit=" s",
        ),
        Figure(
            f"scale Ray Tune's own start of {slots} trials on the joined head",
            tunes,
            "",
            f"Tune's start → all {slots} slots running, the mean of a run before poptune's "
            "search and one after: random search, no scheduler, all slots asked for at once, "
            "the same trial function. Before: "
            + " After: ".join(f"{value(s, whole=True):.1f} s ({said(s)})." for s in tune_own)
            + f" Ray alone, on the same head: {slots} one-CPU actors that import Ray Tune up "
            f"{tune['to_first_s']:.1f}–{tune['to_last_s']:.1f} s after the request, actors "
            f"importing nothing {bare['to_first_s']:.1f}–{bare['to_last_s']:.1f} s (a Tune "
            "trial's worker does more than import Ray Tune before its function runs: its "
            "trainable's set-up, pyarrow's import)",
            unit=" s",
        ),
        Figure(
            "scale joined cluster: Tune's start → all slots running, poptune ÷ Ray Tune's own",
            ours / tunes if math.isfinite(tunes) else float("nan"),
            f"<= {RAMP_TOLERANCE}",
            f"{ours:.1f} s vs {tunes:.1f} s: what poptune adds to the least Tune needs to start "
            f"as many trials on that cluster (target: within {RAMP_TOLERANCE - 1:.0%}, the "
            f"run-to-run spread of a ramp-up); {ours / tune['to_last_s']:.2f}× Ray's start of "
            f"{slots} actors importing Ray Tune",
        ),
    ]


def run(quick: bool = False) -> list[Figure]:
    size = QUICK if quick else DEFAULT
    clock = time.perf_counter()
    with work_dir() as work:
        # Alone first, nothing else of ours running: a ramp-up is a race for the CPUs.
        local = Search(
            run_alone(
                "benchmarks._scale_run",
                spec("poptune", size.slots, size.ramp_trials, work / "local"),
                work,
                size.timeout_s,
            )
        )
        _said(f"local ramp-up done ({time.perf_counter() - clock:.0f} s)")
        with own_head(size.slots, work) as head:
            floor = run_alone(
                "benchmarks._ray_floor", FloorSpec(size.slots, head.address), work, 300, head.auth
            )

            def alone(wiring: str, folder: str) -> Search:
                there = spec(
                    wiring, size.slots, size.ramp_trials, work / folder, address=head.address
                )
                return Search(
                    run_alone("benchmarks._scale_run", there, work, size.timeout_s, head.auth)
                )

            # Tune's own before and after poptune's: neither has the warmer machine every time.
            tune_before, joined, tune_after = (
                alone(wiring, f"joined-{i}") for i, wiring in enumerate(("tune", "poptune", "tune"))
            )
        _said(f"joined-cluster ramp-up done ({time.perf_counter() - clock:.0f} s)")
        small = pair(size.slots, size.trials, work, size)
        _said(f"{size.slots} slots done ({time.perf_counter() - clock:.0f} s)")
        large = pair(2 * size.slots, size.trend_trials, work, size)
        _said(f"{2 * size.slots} slots done ({time.perf_counter() - clock:.0f} s)")
    return [
        *comparison(*small),
        *ramp_figures(local, joined, [tune_before, tune_after], floor),
        *comparison(*large),
        trend(small[0], large[0]),
    ]


def _said(line: str) -> None:
    print(f"scale: {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    quick = "32 and 64 slots, 300 trials each (development)"
    return standalone_main("benchmarks.scale", __doc__, run, quick, argv)


if __name__ == "__main__":
    sys.exit(main())
