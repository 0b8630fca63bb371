"""Ctrl-C and SIGTERM end a search with its state saved, a resume command, and exit code 130.

Ctrl-C is sent as a terminal sends it, to the driver's whole process group (its local Ray too);
SIGTERM as a cloud pre-emption or a scheduler sends it, to the driver alone, here a driver that
joined a cluster with --address.
"""

from __future__ import annotations

import shlex
import signal
import time

import pytest

from poptune.analysis.results import read_results
from poptune.driver.resume import saved_trial_counts
from tests.driver import alive, descendants, start_driver

pytestmark = pytest.mark.ray

SAMPLES = 8
# Trials long enough that the signal lands mid-search: once two have finished, the other six
# still need about 10 s on the 2 slots (measured on an idle 2-core machine), against the tenths
# of a second this test and Tune take to react. (With 3,000 rows × 6 epochs they needed 0.7 s,
# and a signal sent 3 s late found the search finished: all trials done, no exit 130.)
ROWS, EPOCHS = "60000", "12"
EXIT_INTERRUPTED = 130
# Bound on the local Ray being gone after a graceful stop, not a speed target: each process
# exits once it gets the CPU, which on a loaded 2-core machine can take tens of seconds.
LOCAL_RAY_GONE_WITHIN_S = 60


def _interrupted_search(tmp_path, env: dict[str, str], sig: signal.Signals, *extra: str):
    """Start a search, signal it once two trials are done; return (driver, its Ray pids)."""
    driver = start_driver(
        "search", "--synthetic-rows", ROWS, "--num-samples", SAMPLES, "--max-epochs", EPOCHS,
        "--scheduler", "fifo", "--storage", tmp_path / "runs", "--name", "sig", *extra,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        driver.wait_for_line(f"[  2/{SAMPLES}]", timeout_s=240)
        started = descendants(driver.pid)
        if sig == signal.SIGINT:
            driver.signal_group(sig)
        else:
            driver.proc.send_signal(sig)
        assert driver.finish(timeout_s=120) == EXIT_INTERRUPTED, driver.output[-4000:]
    finally:
        driver.stop()
    return driver, started


def _resume_command(output: str) -> list[str]:
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if "Resume it with:" in line)
    command = shlex.split(lines[at + 1])
    assert command[:2] == ["poptune", "search"] and "--resume" in command
    return command[1:]


def test_ctrl_c_saves_a_resumable_experiment_and_stops_the_local_ray(tmp_path, ray_token):
    # The session's private token: the local Ray neither reads nor writes ~/.ray/auth_token.
    env = {"RAY_ADDRESS": "", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    driver, local_ray = _interrupted_search(tmp_path, env, signal.SIGINT)
    assert "interrupted; the experiment is saved" in driver.output
    assert "Traceback" not in driver.output
    saved = saved_trial_counts(str(tmp_path / "runs" / "sig"))
    assert 2 <= saved.terminated < SAMPLES and saved.errored == 0
    assert _resume_command(driver.output)
    # A graceful stop shuts down the private Ray it started, agents included.
    deadline = time.monotonic() + LOCAL_RAY_GONE_WITHIN_S
    while alive(local_ray) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(local_ray), f"the local Ray outlived the driver: {alive(local_ray)}"


def test_sigterm_saves_state_and_the_printed_command_resumes_it(
    cli, ray_cluster, ray_env, tmp_path
):
    driver, _ = _interrupted_search(
        tmp_path, ray_env, signal.SIGTERM, "--address", ray_cluster.address
    )
    assert "interrupted; the experiment is saved" in driver.output
    saved = saved_trial_counts(str(tmp_path / "runs" / "sig"))
    assert 2 <= saved.terminated < SAMPLES and saved.errored == 0

    command = _resume_command(driver.output)
    assert "--address" in command  # the resume joins the same cluster
    r = cli(*command, env=ray_env)
    assert r.code == 0, r.err[-4000:]
    results = read_results(tmp_path / "runs" / "sig")
    assert len(results.trials) == SAMPLES
    assert results.terminated == SAMPLES and results.errored == 0
