"""One simulated search, run in a process of its own: `python -m benchmarks._scale_run SPEC_JSON`.

benchmarks/scale.py starts one such process per search, so that each has a fresh Ray, a driver
whose CPU time is its own, and no state left from the one before. The search runs the surrogate
trainable (benchmarks/_surrogate.py) through either

- ``poptune``: `run_search`, poptune's whole driver stack, with only the trainable swapped; or
- ``plain``: Ray's plain wiring: a Tuner with Ray's OptunaSearch (its default sampler) on the
  same define-by-run space, ASHA with the same rungs, Tune's default loggers and checkpointing,
  no concurrency limit, on the same kind of private local Ray; or
- ``tune``: the least a Tuner does to start trials, for the ramp-up's floor: random search
  (Tune's own generator, no Optuna) over two keys, no scheduler, Tune's default loggers, all
  slots asked for at once (``max_concurrent_trials``), on the cluster at ``address`` (else a
  private local Ray).

It prints one JSON object (:func:`summary`): the timeline's phases, the ramp-up, the driver's
CPU, the CPU spent inside the searcher, the scheduler, the callbacks and Tune's experiment-state
saves, and the experiment's size on disk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ray.tune import Stopper

from benchmarks._surrogate import SurrogateSpec, surrogate_trial
from benchmarks._timeline import ScaleClock, phases, ramp_up

MAX_EPOCHS = 12
GRACE_PERIOD = 2
# What Tune rewrites at each save of the experiment: every trial's state, and the searcher's.
STATE_FILES = ("experiment_state", "searcher-state")


@dataclass(frozen=True)
class RunSpec:
    wiring: str  # "poptune", "plain" or "tune"
    slots: int
    trials: int
    epoch_s_min: float
    epoch_s_max: float
    storage: str  # a local folder; the experiment is storage/name
    address: str | None = None  # a cluster to join (poptune, tune); else a private local Ray
    name: str = "scale"
    # A file the benchmark may write a number of seconds into while the search runs: the search
    # ends once it has run that long (benchmarks/scale.py: once the other wiring's wall shows
    # how long this one may take and still lose).
    stop_file: str | None = None


class StopFile(Stopper):
    """A Tune stopper ending the whole search once it has run as many seconds as ``path``
    says (no file, no limit). Read at most once a second: it is asked at every step."""

    def __init__(self, path: str, clock: ScaleClock) -> None:
        self._path = Path(path)
        self._clock = clock
        self._limit: float | None = None
        self._read_at = 0.0

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        now = time.monotonic()
        if self._limit is None and now - self._read_at >= 1.0:
            self._read_at = now
            with contextlib.suppress(OSError, ValueError):
                self._limit = float(self._path.read_text())
        started = self._clock.started
        return self._limit is not None and started > 0 and time.time() - started >= self._limit


class MethodTimes:
    """Thread CPU seconds spent inside groups of methods, patched onto their classes for the
    run. A call nested in another of the same group (a subclass calling its base) counts once."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._depth: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def patched(self, groups: dict[str, list[tuple[type, str]]]) -> Iterator[None]:
        saved = []
        for group, targets in groups.items():
            for cls, name in targets:
                original = cls.__dict__[name]
                saved.append((cls, name, original))
                setattr(cls, name, self._timed(group, original))
        try:
            yield
        finally:
            for cls, name, original in reversed(saved):
                setattr(cls, name, original)

    def _timed(self, group: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if self._depth[group]:
                return fn(*args, **kwargs)
            self._depth[group] += 1
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[group] += time.thread_time() - started
                self.calls[group] += 1
                self._depth[group] -= 1

        return wrapper


def defining(
    classes: Iterable[type], names: Iterable[str], below: tuple[type, ...] = ()
) -> list[tuple[type, str]]:
    """Every (class, method) that defines one of ``names`` in the classes' MROs, stopping at the
    framework's abstract bases ``below`` (patching those would time every other subclass too):
    patching only the subclass would miss the methods it inherits."""
    found: dict[tuple[type, str], None] = {}
    for cls in classes:
        for klass in cls.__mro__:
            if klass is object or klass in below:
                break
            for name in names:
                if name in klass.__dict__:
                    found[(klass, name)] = None
    return list(found)


def groups(searcher: type, scheduler: type, callbacks: list[type]) -> dict:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import Searcher

    log = ("log_trial_start", "log_trial_result", "log_trial_end")
    scheduling = ("on_trial_add", "on_trial_result", "on_trial_complete", "choose_trial_to_run")
    hooks = ("on_trial_result", "on_trial_complete", *log)
    return {
        "driver loop": [(TuneController, "step")],
        "searcher": defining(
            [searcher], ["suggest", "on_trial_result", "on_trial_complete"], (Searcher,)
        ),
        "scheduler": defining([scheduler], scheduling, (TrialScheduler,)),
        "experiment state saves": [(TuneController, "checkpoint")],
        "Tune's loggers": [
            (cls, m)
            for cls in (JsonLoggerCallback, CSVLoggerCallback, TBXLoggerCallback)
            for m in log
            if m in cls.__dict__
        ],
        # Their own methods only: their bases are Tune's callbacks and loggers.
        "poptune callbacks": [(cls, m) for cls in callbacks for m in hooks if m in cls.__dict__],
    }


def _surrogate(spec: RunSpec):
    from ray import tune

    surrogate = SurrogateSpec(MAX_EPOCHS, spec.epoch_s_min, spec.epoch_s_max)
    return tune.with_parameters(surrogate_trial, spec=surrogate)


def run_poptune(spec: RunSpec, clock: ScaleClock, times: MethodTimes) -> float:
    from poptune.data import prepare, synthetic_tracks
    from poptune.driver.progress import TrialProgress
    from poptune.driver.runner import run_search
    from poptune.driver.scheduling import NewestFirstASHA
    from poptune.driver.searcher import PoptuneOptunaSearch
    from poptune.driver.settings import SearchSettings
    from poptune.driver.tensorboard import TrialTensorBoard

    settings = SearchSettings(
        num_samples=spec.trials,
        max_epochs=MAX_EPOCHS,
        grace_period=GRACE_PERIOD,
        storage=spec.storage,
        name=spec.name,
        address=spec.address,
        force=True,
    )
    prepared = prepare(synthetic_tracks(1500, 0), seed=0)  # only its fingerprint is written
    patched = groups(PoptuneOptunaSearch, NewestFirstASHA, [TrialProgress, TrialTensorBoard])
    quiet = contextlib.redirect_stdout(io.StringIO())  # its line per trial: not measured
    with times.patched(patched), quiet:
        outcome = run_search(
            settings, prepared, callbacks=[clock], trainable=_surrogate(spec), local_cpus=spec.slots
        )
    return outcome.wall_s


def run_plain(spec: RunSpec, clock: ScaleClock, times: MethodTimes) -> float:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from poptune.cluster.session import ray_session
    from poptune.metric import METRIC, MODE
    from poptune.spaces import define_space

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # silent at verbose=0, as poptune runs it
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    patched = groups(OptunaSearch, ASHAScheduler, [])
    with ray_session(None, num_cpus=spec.slots), times.patched(patched):
        tuner = tune.Tuner(
            tune.with_resources(_surrogate(spec), {"cpu": 1}),
            tune_config=tune.TuneConfig(
                metric=METRIC,
                mode=MODE,
                search_alg=OptunaSearch(space=define_space, metric=METRIC, mode=MODE, seed=0),
                scheduler=ASHAScheduler(
                    time_attr="training_iteration",
                    max_t=MAX_EPOCHS,
                    grace_period=GRACE_PERIOD,
                    reduction_factor=3,
                ),
                num_samples=spec.trials,
            ),
            run_config=tune.RunConfig(
                name=spec.name,
                storage_path=spec.storage,
                callbacks=[clock],
                stop=StopFile(spec.stop_file, clock) if spec.stop_file else None,
                verbose=0,
            ),
        )
        started = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - started


def run_tune(spec: RunSpec, clock: ScaleClock, times: MethodTimes) -> float:
    from ray import tune

    from poptune.cluster.session import ray_session
    from poptune.metric import METRIC, MODE

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Two keys the surrogate reads: its epochs' lengths vary from trial to trial as in a search.
    space = {"lr": tune.loguniform(1e-4, 1e-1), "width_1": tune.lograndint(8, 512)}
    with ray_session(spec.address, num_cpus=spec.slots):
        tuner = tune.Tuner(
            tune.with_resources(_surrogate(spec), {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=METRIC, mode=MODE, num_samples=spec.trials, max_concurrent_trials=spec.slots
            ),
            run_config=tune.RunConfig(
                name=spec.name, storage_path=spec.storage, callbacks=[clock], verbose=0
            ),
        )
        started = time.perf_counter()
        tuner.fit()
        return time.perf_counter() - started


WIRINGS = {"poptune": run_poptune, "plain": run_plain, "tune": run_tune}


def disk_usage(path: Path) -> dict[str, float]:
    """Files and bytes of the experiment, and of its checkpoints (a file that goes away while
    counted, such as SQLite's shared-memory file, counts as nothing)."""
    sizes: dict[Path, int] = {}
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file():
                sizes[p] = p.stat().st_size
    checkpoints = [s for p, s in sizes.items() if any(x.startswith("checkpoint_") for x in p.parts)]
    state = [s for p, s in sizes.items() if p.parent == path and p.name.startswith(STATE_FILES)]
    return {
        "files": len(sizes),
        "bytes": sum(sizes.values()),
        "checkpoint_bytes": sum(checkpoints),
        "state_bytes": sum(state),
    }


def per_10s(clock: ScaleClock) -> list[list[int]]:
    """[second, epochs ended, distinct trials] in each 10 s of the search: how it filled and
    drained."""
    buckets: dict[int, list] = defaultdict(lambda: [0, set()])
    for e in clock.epochs:
        b = buckets[int((e.ended - clock.started) // 10)]
        b[0] += 1
        b[1].add(e.trial_id)
    return [[k * 10, n, len(ids)] for k, (n, ids) in sorted(buckets.items())]


def worker_starts(clock: ScaleClock) -> dict[str, list[float]]:
    """Seconds from Tune's start, sorted, for every worker's first trial: when Ray forked the
    worker process, when the trial function was entered, when its first epoch began."""
    starts = clock.worker_starts.values()
    return {
        name: sorted(getattr(w, name) - clock.started for w in starts)
        for name in ("forked", "entered", "began")
    }


def summary(spec: RunSpec, clock: ScaleClock, times: MethodTimes, call_wall: float) -> dict:
    ramp = ramp_up(clock.epochs, spec.slots)
    split = phases(clock.epochs, spec.slots, clock.started, clock.ended)
    epochs_of: dict[str, int] = defaultdict(int)
    for e in clock.epochs:
        epochs_of[e.trial_id] += 1
    out: dict[str, Any] = {
        "spec": asdict(spec),
        "call_wall_s": call_wall,  # Ray's start and stop and the experiment's files included
        "wall_s": clock.ended - clock.started,  # Tune's start to its end
        "busy_s": sum(e.ended - e.began for e in clock.epochs),
        "trials": len(epochs_of),
        "trials_done": clock.trials_done,
        "results": clock.results,
        "driver_cpu_s": clock.driver_cpu_s,
        "ray_cpu_s": clock.ray_cpu_s(),
        "ramp_up_s": ramp.seconds,  # from the first trial's start until every slot runs one
        "first_start_s": None if ramp.first_start is None else ramp.first_start - clock.started,
        "peak_concurrency": ramp.peak,
        "workers": len({e.pid for e in clock.epochs}),
        "phases": [
            {
                "name": p.name,
                "wall": p.wall,
                "busy": p.busy,
                "idle_per_slot": p.idle_per_slot,
                "utilisation": p.utilisation,
            }
            for p in split
        ],
        "per_10s": per_10s(clock),
        "worker_starts": worker_starts(clock),
        "method_cpu_s": dict(times.seconds),
        "method_calls": dict(times.calls),
        "disk": disk_usage(Path(spec.storage) / spec.name),
    }
    return out


def main(argv: list[str]) -> int:
    spec = RunSpec(**json.loads(argv[0]))
    clock, times = ScaleClock(), MethodTimes()
    called = time.perf_counter()
    WIRINGS[spec.wiring](spec, clock, times)
    call_wall = time.perf_counter() - called
    print(json.dumps(summary(spec, clock, times, call_wall)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
