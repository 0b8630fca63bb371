"""A stand-in for poptune's trial that trains nothing: it sleeps through each epoch and reports a
plausible learning curve, so the driver (searcher, scheduler, callbacks, checkpoints, files) can
be measured at a scale no 2-core machine could train.

It imports only the standard library and Ray Tune (no torch, numpy or poptune): a trial worker
then costs what Ray itself costs, and dozens of them fit in memory on a small machine.

Every trial draws its own epoch duration (a config's epoch cost is a property of the config:
width, batch size) and a floor it converges towards, both from its config, so the same config
gives the same curve and TPE has a real, learnable optimum: ``lr`` near 3e-3, ``width_1`` near
128, the ``MLP2Layer`` family, the ``quantile`` recipe. On top of that each trial has its luck
(its seed, its shuffles): an offset as large as the differences between good configs, as in
poptune's real search, where TPE and random search end within a fraction of a percent of each
other (benchmarks/RESULTS.md, quality). Without it TPE converges on the bowl within a few
hundred trials, every new trial then beats ASHA's cut-offs, and trials run 7 epochs on average
instead of the 4 that ASHA's rule gives a search whose trials rank at random (what poptune's
estimate assumes, and what its real searches measure). Each epoch is checkpointed (a small
file: the driver's cost of a checkpoint does not depend on its size, the worker's upload does),
and a restarted trial resumes from its checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune

STATE_FILE = "surrogate_state.json"
FAMILY_COST = {
    "MLP1Layer": 6.0,
    "MLP2Layer": 0.0,
    "MLP3LayerDropout": 3.0,
    "MLP2LayerBatchNorm": 9.0,
}


@dataclass(frozen=True)
class SurrogateSpec:
    """How long a surrogate epoch sleeps, drawn per trial in [epoch_s_min, epoch_s_max] on a log
    scale (an epoch's cost grows with width and batch size, both drawn on log scales)."""

    max_epochs: int
    epoch_s_min: float
    epoch_s_max: float
    seed: int = 0


LUCK_SD = 8.0  # a trial's own luck, in val MSE: about the spread of the bowl's best region


def floor_of(config: dict) -> float:
    """The validation MSE a config converges to: a smooth bowl around a known optimum."""
    lr = math.log10(float(config.get("lr", 1e-3)) / 3e-3)
    width = math.log2(float(config.get("width_1", 128)) / 128)
    batch = math.log2(float(config.get("batch_size", 256)) / 256)
    recipe = 0.0 if config.get("features") == "quantile" else 2.0
    family = FAMILY_COST.get(str(config.get("family")), 5.0)
    return 200.0 + 25.0 * lr * lr + 2.0 * width * width + 0.5 * batch * batch + recipe + family


def curve(config: dict, epoch: int, rng: random.Random, luck: float = 0.0) -> float:
    """Validation MSE after ``epoch`` epochs: from ~350 down to the config's floor moved by the
    trial's luck, plus noise."""
    floor = floor_of(config) + luck
    return floor + (350.0 - floor) * math.exp(-epoch / 2.5) + rng.gauss(0.0, 0.3)


def process_started_at() -> float:
    """When this process was forked (wall clock, 10 ms resolution): with ``entered_at``, how a
    trial's start splits between Ray launching its worker and the worker getting ready."""
    with open("/proc/stat", encoding="ascii") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
        ticks = int(f.read().rpartition(")")[2].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def surrogate_trial(config: dict, *, spec: SurrogateSpec) -> None:
    entered = time.time()
    key = json.dumps(config, sort_keys=True, default=str) + str(spec.seed)
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    trial_rng = random.Random(seed)
    epoch_s = math.exp(trial_rng.uniform(math.log(spec.epoch_s_min), math.log(spec.epoch_s_max)))
    luck = trial_rng.gauss(0.0, LUCK_SD)
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as path:
            start = json.loads((Path(path) / STATE_FILE).read_text())["epoch"]
    node_id = ray.get_runtime_context().get_node_id()
    for epoch in range(start + 1, spec.max_epochs + 1):
        rng = random.Random(seed + epoch)
        began = time.time()
        time.sleep(epoch_s * rng.uniform(0.95, 1.05))
        val_mse = curve(config, epoch, rng, luck)
        ended = time.time()
        stats = {
            "epoch": epoch,
            "train_loss": val_mse / 230.0,  # standardised units, as fit reports it
            "val_mse": val_mse,
            "val_rmse": math.sqrt(val_mse),
            "val_mae": 0.78 * math.sqrt(val_mse),
            "seconds": ended - began,
            "ended_at": ended,
            "node_id": node_id,
            "resumed_from_epoch": start,
            "entered_at": entered,
            "process_started_at": process_started_at(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / STATE_FILE).write_text(json.dumps({"epoch": epoch, "pid": os.getpid()}))
            tune.report(stats, checkpoint=tune.Checkpoint.from_directory(tmp))
