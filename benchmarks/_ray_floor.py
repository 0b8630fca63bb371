"""How fast Ray itself starts N one-CPU actors: the floor under any search's ramp-up.

`python -m benchmarks._ray_floor SPEC_JSON` joins the cluster at ``address`` (one that no search
is using), asks for ``slots`` actors at once and records when each is up, twice:

- ``bare``: an actor that does nothing: a Python worker process and Ray's core;
- ``tune``: an actor that imports Ray Tune first, as every trial worker does before its first
  epoch (the surrogate imports nothing else).

Its JSON holds, for each, the seconds from the request to the first actor up, to the last, and
from the first to the last (what `ramp_up_s` of a search measures: first trial start until every
slot runs one). A search cannot fill its slots faster than the ``tune`` figure.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass

import ray


@dataclass(frozen=True)
class FloorSpec:
    slots: int
    address: str


@dataclass(frozen=True)
class ActorStart:
    to_first_s: float
    to_last_s: float

    @property
    def first_to_last_s(self) -> float:
        return self.to_last_s - self.to_first_s


@ray.remote(num_cpus=1)
class Bare:
    def up(self) -> float:
        return time.time()


@ray.remote(num_cpus=1)
class TuneWorker:
    def __init__(self) -> None:
        import ray.tune  # noqa: F401  (what a trial worker loads before its first epoch)

    def up(self) -> float:
        return time.time()


def start_all(actor_cls, slots: int) -> ActorStart:
    asked = time.time()
    actors = [actor_cls.remote() for _ in range(slots)]
    up = sorted(ray.get([a.up.remote() for a in actors]))
    for a in actors:
        ray.kill(a)
    time.sleep(2.0)  # let the killed workers exit before the next round asks for CPUs
    return ActorStart(up[0] - asked, up[-1] - asked)


def main(argv: list[str]) -> int:
    spec = FloorSpec(**json.loads(argv[0]))
    ray.init(address=spec.address, log_to_driver=False, logging_level="WARNING")
    try:
        out = {}
        for name, cls in (("bare", Bare), ("tune", TuneWorker)):
            start = start_all(cls, spec.slots)
            out[name] = {**asdict(start), "first_to_last_s": start.first_to_last_s}
    finally:
        ray.shutdown()
    print(json.dumps({"spec": asdict(spec), **out}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
