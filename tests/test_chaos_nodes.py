"""A search on a local cluster that keeps losing worker nodes (benchmarks/chaos.py, smaller):
every trial is accounted for once, a restart loses at most the epoch it was in, no finished
trial runs again, the study copy holds every trial once, and the analysis runs.

A head with no CPUs for trials and 3 one-CPU worker nodes, each its own `ray start` on
127.0.0.1 with token auth; a thread SIGKILLs a random worker node's raylet and workers every
few seconds (exponential waits) and starts a replacement. The audit's own rules are checked
first on made-up rows, so that a search that lost epochs would be caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._chaos_audit import Audit, TrialAudit, running_epochs
from benchmarks.chaos import ChaosSize, run_chaos

# Kills paced by progress, not the clock (a loaded 2-core machine restarts a trial slower than
# timed kills would come): three kills, each of a node whose trial has logged 2 epochs there,
# so that every kill costs real work its checkpoint must save. 9 trials of 24 epochs (~0.5 s
# each) on 3 slots outlast the three kills, each ~10 s of a replacement's `ray start`.
SIZE = ChaosSize(samples=9, max_epochs=24, rows=20_000, mean_kill_s=0.5, min_kills=3,
                 timeout_s=900, kill_after_epochs=2, max_kills=3)  # fmt: skip


def _trial(epochs: tuple[int, ...], resumed: tuple[int, ...], status: str = "TERMINATED"):
    return TrialAudit("t1", status, failures=1, epochs=epochs, resumed_from=resumed)


def test_the_audit_allows_one_epoch_redone_and_flags_more() -> None:
    # Epoch 3 was logged, its checkpoint lost with the node: resumed from 2, 3 again.
    redo_one = _trial((1, 2, 3, 3, 4), (0, 0, 0, 2, 2))
    # Resumed from scratch after 3 epochs: the checkpoints were of no use.
    from_scratch = _trial((1, 2, 3, 1, 2, 3, 4), (0, 0, 0, 0, 0, 0, 0))
    ran_again = _trial((1, 2, 3, 4, 4), (0, 0, 0, 0, 3))
    assert redo_one.rewinds == [1] and from_scratch.rewinds == [3]
    assert Audit(1, 4, [redo_one], study_trials=1).problems() == []
    assert Audit(1, 4, [from_scratch], study_trials=1).lost == 1
    assert any("ran again" in p for p in Audit(1, 4, [ran_again], study_trials=1).problems())
    unfinished = Audit(2, 4, [_trial((1, 2), (0, 0), status="RUNNING")], study_trials=1)
    assert unfinished.lost == 2 and len(unfinished.problems()) == 3


def test_kills_are_paced_by_the_epochs_a_running_trial_logged_on_its_node(tmp_path: Path) -> None:
    def result_file(name: str, rows: list[tuple[int, str, int]], done: bool = False) -> Path:
        path = tmp_path / name / "result.json"
        path.parent.mkdir()
        lines = [{"epoch": e, "node_id": n, "pid": p, "done": False} for e, n, p in rows]
        lines[-1]["done"] = done
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return path

    # Restarted on node b after 3 epochs on a: 2 epochs there since.
    moved = result_file("moved", [(1, "a", 1), (2, "a", 1), (3, "a", 1), (3, "b", 7), (4, "b", 7)])
    # Finished on c: its worker may be idle, a kill there would cost nothing.
    finished = result_file("finished", [(e, "c", 2) for e in range(1, 6)])
    done_early = result_file("stopped", [(1, "d", 3), (2, "d", 3)], done=True)
    assert running_epochs([moved, finished, done_early], max_epochs=5) == {("b", 7): 2}


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~6 min on a quiet 2-core machine; 2-3x that when loaded
def test_a_search_survives_losing_worker_nodes(ray_token: Path, tmp_path: Path) -> None:
    result = run_chaos(SIZE, tmp_path, ray_token, calm=False, seed=1)
    a = result.audit
    assert len(result.kills) >= SIZE.min_kills, f"only {len(result.kills)} kill(s): {a.summary()}"
    assert a.problems() == [], a.summary()
    assert a.lost == 0 and a.repeated_finished == 0
    # Each kill took a trial 2 epochs into its run on that node: Tune retried it, and it went on
    # from a checkpoint, not from scratch.
    assert result.busy_kills == len(result.kills), result.kills
    assert a.failures >= len(result.kills), a.summary()
    assert "being retried from its last checkpoint" in result.driver_log
    resumed = [r for t in a.trials for _, r in t.restarts() if r >= 1]
    assert len(resumed) >= len(result.kills), a.summary()
    assert result.analyze_code == 0, result.analyze_tail
    print(
        f"chaos: {len(result.kills)} kills ({result.busy_kills} with a trial running), "
        f"{a.summary()}; {result.wall_s:.0f} s"
    )
