"""The scale benchmark's machinery (benchmarks/scale.py): the timeline's split of a search's wall,
and one tiny simulated search through poptune's stack in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks._scale_run import RunSpec
from benchmarks._timeline import Epoch, Phase, RampUp, phases, ramp_up
from localray.env import private_ray_env

REPO = Path(__file__).resolve().parents[1]


def _epochs() -> list[Epoch]:
    """Two slots, three trials: a and b start at 1 and 2 s, c takes a's slot when a ends."""
    return [
        Epoch("a", 1, 1.0, 3.0),
        Epoch("a", 1, 3.0, 5.0),
        Epoch("b", 2, 2.0, 6.0),
        Epoch("c", 1, 5.0, 9.0),
    ]


def _timeline(slots: int) -> tuple[RampUp, list[Phase]]:
    """The ramp-up and the phases of :func:`_epochs` on ``slots`` slots, in a wall of 0 to 10 s."""
    return ramp_up(_epochs(), slots=slots), phases(_epochs(), slots, started=0.0, ended=10.0)


def test_timeline_splits_the_wall_into_phases_that_add_up() -> None:
    ramp, split = _timeline(slots=2)
    assert (ramp.first_start, ramp.all_busy, ramp.peak, ramp.seconds) == (1.0, 2.0, 2, 1.0)
    ramp_phase, steady, tail = split
    assert (ramp_phase.start, ramp_phase.end, steady.end, tail.end) == (0.0, 2.0, 5.0, 10.0)
    busy = 12.0  # slot-seconds inside epochs
    assert sum(p.busy for p in split) == pytest.approx(busy)
    # wall − ideal, split by phase: 10 − 12 / 2
    assert sum(p.idle_per_slot for p in split) == pytest.approx(4.0)
    assert steady.utilisation == pytest.approx(1.0)  # a, b, then b, c: both slots busy


def test_a_search_that_never_fills_its_slots_has_no_ramp_up_time() -> None:
    ramp, split = _timeline(slots=3)
    assert ramp.all_busy is None and ramp.seconds is None and ramp.peak == 2
    assert split[0].end == 2.0  # the ramp-up ends where the peak was first reached


def _simulated(wiring: str, tmp_path: Path, trials: int) -> dict:
    """A 4-slot search of the surrogate through ``wiring``, in a process of its own."""
    spec = RunSpec(
        wiring=wiring,
        slots=4,
        trials=trials,
        epoch_s_min=0.2,
        epoch_s_max=0.4,
        storage=str(tmp_path / "runs"),
    )
    with private_ray_env(tmp_path / "home") as env:
        run = subprocess.run(
            [sys.executable, "-m", "benchmarks._scale_run", json.dumps(asdict(spec))],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_tiny_simulated_search_reports_its_phases(tmp_path: Path) -> None:
    out = _simulated("poptune", tmp_path, trials=8)
    assert out["trials"] == out["trials_done"] == 8
    assert out["results"] >= 8 * 2  # ASHA's grace period: at least 2 epochs each
    assert [p["name"] for p in out["phases"]] == ["ramp-up", "steady", "tail"]
    assert sum(p["wall"] for p in out["phases"]) == pytest.approx(out["wall_s"], rel=1e-6)
    # busy + idle = wall × slots, phase by phase and in all
    idle = sum(p["idle_per_slot"] for p in out["phases"])
    assert idle == pytest.approx(out["wall_s"] - out["busy_s"] / 4, abs=1e-6)
    assert out["driver_cpu_s"] > 0 and out["method_cpu_s"]["searcher"] > 0
    assert out["method_calls"]["searcher"] >= 8  # at least a suggestion per trial
    assert out["disk"]["files"] > 0


def test_tunes_own_search_runs_every_slot_at_once_through_every_epoch(tmp_path: Path) -> None:
    """The ramp-up's floor: Tune's random search, no scheduler, all slots asked for at once."""
    out = _simulated("tune", tmp_path, trials=4)
    assert out["trials"] == out["trials_done"] == 4
    assert out["results"] == 4 * 12  # no scheduler stops a trial early
    assert out["peak_concurrency"] == 4 and out["ramp_up_s"] is not None
    assert len(out["worker_starts"]["entered"]) == out["workers"] == 4
    experiment = tmp_path / "runs" / "scale"
    assert list(experiment.glob("experiment_state-*.json"))  # Tune's own search...
    assert not list(experiment.glob("poptune_search.json")) + list(experiment.glob("*.db"))
