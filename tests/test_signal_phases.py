"""A signal at the phases tests/test_signals.py does not reach: while the private local Ray
starts, and while `poptune run` retrains its finalists after the search. Each exits 130 with
the command that continues the job. (`python -m benchmarks._chaos_signals` runs every phase with
Ctrl-C, SIGTERM and SIGUSR1, and runs each printed command to completion.)
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest

from localray.env import private_ray_env
from localray.processes import Pid, marked_pids
from tests.driver import start_driver
from tests.quirks import doc_rows
from tests.shared_search import asha_experiment

pytestmark = pytest.mark.ray

EXIT_INTERRUPTED = 130
# Bound on a stopped Ray being gone, not a speed target: on a loaded 2-core machine each of its
# processes exits once it gets the CPU.
RAY_GONE_WITHIN_S = 60


BEFORE = "Ctrl-C or SIGTERM before the search wrote anything (loading data, starting Ray)"
ANALYSIS = "Ctrl-C or SIGTERM during `poptune run`'s analysis, or `poptune analyze`"


def _documented(title: str) -> str:
    code, message = doc_rows("A full disk, Ctrl-C and SIGTERM")[title]
    assert code == EXIT_INTERRUPTED
    return message


def _printed_command(output: str) -> list[str]:
    """The command on the line after the one that ends with ``with:`` (its own line)."""
    lines = output.splitlines()
    at = max(i for i, line in enumerate(lines) if line.rstrip().endswith("with:"))
    return shlex.split(lines[at + 1])


def test_sigterm_while_the_local_ray_starts_stops_it_and_prints_the_same_command(
    tmp_path, ray_token
):
    """Nothing is saved before Ray is up, so the command to continue is the same command; it is
    not run here (every other search test runs it): what makes it work is checked instead, an
    experiment folder left empty, which a new search does not refuse. The benchmark's matrix
    runs it."""
    exp = tmp_path / "runs" / "early"
    args = ("search", "--synthetic-rows", "2000", "--num-samples", "2", "--max-epochs", "1",
            "--storage", str(exp.parent), "--name", exp.name)  # fmt: skip
    with private_ray_env(tmp_path / "home") as env:
        # The Ray temp dir of its own marks every process of the driver's Ray.
        env |= {"RAY_ADDRESS": "", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
        marker = env["RAY_TMPDIR"]
        driver = start_driver(*args, env=env, cwd=tmp_path)
        try:
            driver.wait_for(lambda: bool(marked_pids(marker)), 120, "the local Ray starting")
            assert "trial(s) at once" not in driver.output  # still starting: no search yet
            ray_started = [Pid.of(pid) for pid in marked_pids(marker)]
            driver.proc.send_signal(signal.SIGTERM)  # to the driver alone, as `docker stop` does
            assert driver.finish(timeout_s=120) == EXIT_INTERRUPTED, driver.output[-4000:]
        finally:
            driver.stop()
        assert "Traceback" not in driver.output, driver.output[-6000:]
        assert f"poptune: {_documented(BEFORE)}" in driver.output
        assert _printed_command(driver.output) == ["poptune", *args]
        assert not exp.exists() or not any(exp.iterdir())

        # The Ray it had begun to start is stopped with it, the processes Ray detaches included.
        # Those it had started by the signal, and any it started after (by the marker).
        def left() -> list:
            return [p for p in ray_started if p.running()] + list(marked_pids(marker))

        deadline = time.monotonic() + RAY_GONE_WITHIN_S
        while left() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left(), "a half-started Ray outlived it"


@pytest.mark.parametrize("ctrl_c", [True, False], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_run_retrains_the_finalists_prints_the_analysis_that_finishes_it(
    ctrl_c, cli, ray_cluster, ray_env, tmp_path_factory, tmp_path
):
    """`poptune run` after its search. Ctrl-C: Tune's SIGINT handler, left installed by the
    search, must not swallow it (it did: the run went on to the end, exit 0). SIGTERM: Ray's
    shutdown put it back to the system's default (it killed the driver outright, exit -15, its
    retrain workers left running). The printed `poptune analyze` completes the analysis."""
    original = asha_experiment(ray_cluster, Path(ray_env["RAY_AUTH_TOKEN_PATH"]), tmp_path_factory)
    runs = tmp_path / "runs"
    shutil.copytree(original, runs / "asha")
    # The search is finished: `run --resume` joins the cluster, has no trial left to run, and
    # goes on to the analysis.
    driver = start_driver(
        "run", "--address", ray_cluster.address, "--storage", runs, "--name", "asha", "--resume",
        "--seeds", "2", "--finalists", "1", env=ray_env, cwd=tmp_path,
    )  # fmt: skip
    try:
        driver.wait_for_line("re-evaluating the finalists", timeout_s=240)
        if ctrl_c:
            driver.signal_group(signal.SIGINT)  # a terminal's: the driver and its retrainers
        else:
            driver.proc.send_signal(signal.SIGTERM)  # a scheduler's: the driver alone
        assert driver.finish(timeout_s=120) == EXIT_INTERRUPTED, driver.output[-4000:]
    finally:
        driver.stop()
    assert "training and scoring the baselines" not in driver.output  # it stopped in the phase
    assert "internal error" not in driver.output
    # No traceback of the driver's. (A retrain worker still starting may print one of its own:
    # hit by the terminal's Ctrl-C, or finding its parent's semaphores gone once the driver
    # has stopped the pool.)
    assert not re.search(r'File "[^"]*/poptune/', driver.output), driver.output[-6000:]
    assert f"poptune: {_documented(ANALYSIS)}" in driver.output
    command = _printed_command(driver.output)
    assert command == ["poptune", "analyze", str(runs / "asha"), "--seeds", "2", "--finalists", "1"]
    assert not (runs / "asha" / "analysis" / "metrics.json").exists()

    r = cli(*command[1:], env=ray_env)
    assert r.code == 0, r.err[-4000:]
    metrics = json.loads((runs / "asha" / "analysis" / "metrics.json").read_text())
    best = json.loads((runs / "asha" / "best_config.json").read_text())
    assert {k: v for k, v in best.items() if k != "reproduce"} == metrics["best_config"]
    assert best["reproduce"]["seeds"] == [1000, 2000]  # written by the analysis: 2 seeds
