"""The driver's memory over a long search, in a process of its own:
`python -m benchmarks._chaos_memory SPEC_JSON`.

poptune's whole driver (`run_search`: TPE and its study, ASHA, the callbacks, Tune's loop, a
checkpoint per epoch, the experiment's files) runs a search of the surrogate trainable
(benchmarks/_surrogate.py: it sleeps through short epochs) on a private local Ray that
advertises ``slots`` CPUs. A callback samples this process's resident memory (VmRSS) every
``every`` finished trials, and counts what Tune keeps per trial; with ``trace`` on, tracemalloc
runs from the end of the warm-up, and the allocations that grew most since then, by line, are
reported. It prints one JSON object.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from ray.tune import Callback

from benchmarks._surrogate import SurrogateSpec, surrogate_trial


@dataclass(frozen=True)
class MemorySpec:
    trials: int
    slots: int
    every: int  # sample the driver's memory every this many finished trials
    warm_up: int  # trials before the line is fitted (TPE's window filling, caches warming)
    storage: str
    max_epochs: int = 3
    epoch_s_min: float = 0.2
    epoch_s_max: float = 0.6
    trace: bool = False
    name: str = "memory"


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def gc_types() -> Counter:
    """Objects the garbage collector tracks, by type (dicts of plain values are not tracked:
    tracemalloc sees those)."""
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def tune_kept(trials: list) -> dict[str, int]:
    """What Tune holds for the trials it lists: the trials, and the checkpoint results its
    checkpoint managers keep in memory (poptune keeps every checkpoint's files while it runs;
    of a finished trial, only the newest's result stays in memory)."""
    from poptune.compat.ray_tune_compat import checkpoint_results_of

    kept = sum(checkpoint_results_of(trial) for trial in trials)
    return {"tune_trials": len(trials), "checkpoint_results": kept}


class MemorySampler(Callback):
    def __init__(self, spec: MemorySpec) -> None:
        self.spec = spec
        self.done = 0
        self.samples: list[dict[str, Any]] = []
        self.types_at_warm_up: Counter | None = None
        self.types_at_end: Counter | None = None
        self.trace_at_warm_up: tracemalloc.Snapshot | None = None
        self.trace_at_end: tracemalloc.Snapshot | None = None
        self._started = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._count(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._count(trials)

    def _count(self, trials: list) -> None:
        self.done += 1
        if self.done % self.spec.every:
            return
        gc.collect()  # what is held, not garbage waiting for the next collection
        self.samples.append(
            {
                "trials": self.done,  # finished; Tune lists the running and pending too
                "rss_mb": rss_mb(),
                "s": time.monotonic() - self._started,
                **tune_kept(trials),
            }
        )
        if self.done == self.spec.warm_up:
            self.types_at_warm_up = gc_types()
            if self.spec.trace:
                tracemalloc.start(8)
                self.trace_at_warm_up = tracemalloc.take_snapshot()

    def on_experiment_end(self, trials, **info) -> None:
        # Here, not after run_search returns: Tune's controller and its trials are still alive.
        gc.collect()
        self.types_at_end = gc_types()
        if self.trace_at_warm_up is not None:
            self.trace_at_end = tracemalloc.take_snapshot()
            tracemalloc.stop()


def growth_by_type(sampler: MemorySampler) -> list[tuple[str, int]]:
    if sampler.types_at_warm_up is None or sampler.types_at_end is None:
        return []
    diff = sampler.types_at_end.copy()
    diff.subtract(sampler.types_at_warm_up)
    return [(k, n) for k, n in diff.most_common(15) if n > 0]


def growth_by_line(sampler: MemorySampler) -> list[dict[str, Any]]:
    """Allocations alive at the end that were not at the warm-up's end, by the line that made
    them (the innermost frame), largest first; with the outer frames of the largest."""
    if sampler.trace_at_warm_up is None or sampler.trace_at_end is None:
        return []
    stats = sampler.trace_at_end.compare_to(sampler.trace_at_warm_up, "traceback")
    out = []
    for stat in stats[:15]:
        frames = [f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback]
        out.append({"kib": stat.size_diff / 1024, "count": stat.count_diff, "frames": frames})
    return out


def _short(filename: str) -> str:
    return filename.rsplit("site-packages/", 1)[-1]


def run(spec: MemorySpec) -> dict[str, Any]:
    from ray import tune

    from poptune.data import prepare, synthetic_tracks
    from poptune.driver.runner import run_search
    from poptune.driver.settings import SearchSettings

    settings = SearchSettings(
        num_samples=spec.trials,
        max_epochs=spec.max_epochs,
        grace_period=1,
        storage=spec.storage,
        name=spec.name,
        force=True,
    )
    prepared = prepare(synthetic_tracks(1500, 0), seed=0)  # only its fingerprint is written
    surrogate = SurrogateSpec(spec.max_epochs, spec.epoch_s_min, spec.epoch_s_max)
    trainable = tune.with_parameters(surrogate_trial, spec=surrogate)
    sampler = MemorySampler(spec)
    started_mb = rss_mb()
    with contextlib.redirect_stdout(io.StringIO()):  # its line per trial: not measured
        outcome = run_search(
            settings, prepared, callbacks=[sampler], trainable=trainable, local_cpus=spec.slots
        )
    return {
        "spec": asdict(spec),
        "rss_before_mb": started_mb,
        "samples": sampler.samples,
        "terminated": outcome.terminated,
        "errored": outcome.errored,
        "wall_s": outcome.wall_s,
        "types": growth_by_type(sampler),
        "lines": growth_by_line(sampler),
    }


def main(argv: list[str]) -> int:
    spec = MemorySpec(**json.loads(argv[0]))
    print(json.dumps(run(spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
