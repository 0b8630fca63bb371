"""A driver killed mid-search (SIGKILL: no handler runs, nothing is saved on the way out) is
continued by `poptune search --name N --resume`, and every trial is accounted for exactly once.

It runs on the private local Ray a laptop user gets (no --address), because that Ray belongs to
the driver: it must not outlive it.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import optuna
import pytest

from localray.processes import kill_pids
from poptune.analysis.results import read_results
from poptune.layout import STUDY_FILE
from poptune.spaces import WEIGHT_DECAY_RANGE
from poptune.trainables.config import REFERENCE
from tests.driver import alive, descendants, start_driver
from tests.shared_search import SAMPLES, asha_experiment

pytestmark = pytest.mark.ray

# A killed driver's local Ray: gcs_server, raylet and workers go at once; Ray's two agents
# first report the raylet's death to the (dead) GCS with a fixed 60 s timeout, then exit.
# Bounds on "gone", not speed targets: on a loaded 2-core machine a worker or the log monitor
# can take tens of seconds to notice its GCS is gone (seen in the full suite at 15 s).
RAY_CORE_GONE_WITHIN_S = 60
RAY_AGENTS_GONE_WITHIN_S = 90
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
# Trials long enough that the kill lands mid-search, with trials running: once three have
# finished, the other five still need about 8 s on the 2 slots (measured on an idle 2-core
# machine), against the tenths of a second this test takes to react. (With 3,000 rows × 6
# epochs they needed 0.5 s: a kill a little late found the search finished.)
ROWS, EPOCHS = "60000", "12"


def test_killed_driver_resumes_and_accounts_for_every_trial(cli, tmp_path, ray_token):
    samples = 8
    runs = tmp_path / "runs"
    exp_dir = runs / "crash"
    # The session's private token: the local Ray neither reads nor writes ~/.ray/auth_token.
    local = {"RAY_ADDRESS": "", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    driver = start_driver(
        "search", "--synthetic-rows", ROWS, "--num-samples", samples, "--max-epochs", EPOCHS,
        "--scheduler", "fifo", "--storage", runs, "--name", "crash", env=local, cwd=tmp_path,
    )  # fmt: skip
    local_ray: list[int] = []
    try:
        driver.wait_for_line(f"[  3/{samples}]", timeout_s=240)
        local_ray = descendants(driver.pid)
        assert local_ray, "the driver started no local Ray processes"
        agents = [pid for pid in local_ray if _cmdline(pid).startswith(AGENTS)]
        driver.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        assert driver.finish(timeout_s=30) == -signal.SIGKILL
        core = [pid for pid in local_ray if pid not in agents]
        _wait_gone(core, killed_at + RAY_CORE_GONE_WITHIN_S)
        assert not alive(core), f"the killed driver's Ray outlived it: {_described(core)}"

        # An orphan, as a restore can leave: a trial folder that Tune's state does not list.
        # (A folder of a trial that trained: its result.json may still sit in the killed
        # driver's write buffer, but its checkpoints are on disk.)
        done = next(exp_dir.glob("*/checkpoint_*")).parent
        shutil.copytree(done, exp_dir / "MLP1Layer_0rphan00")

        started = time.monotonic()
        r = cli("search", "--storage", runs, "--name", "crash", "--resume", env=local)
        resume_s = time.monotonic() - started
        assert r.code == 0, r.err[-4000:]
        assert "resuming" in r.out

        _wait_gone(agents, killed_at + RAY_AGENTS_GONE_WITHIN_S)
        assert not alive(agents), f"Ray's agents outlived the killed driver: {_described(agents)}"
    finally:
        driver.stop()
        kill_pids(alive(local_ray))  # only after a failed assertion is anything left here

    # read_results is how `poptune analyze` sees the trials: Tune's result API, orphans unlisted.
    results = read_results(exp_dir)
    assert len(results.trials) == samples, [t.trial_id for t in results.trials]
    assert results.terminated == samples and results.errored == 0
    assert "0rphan00" not in {t.trial_id for t in results.trials}
    assert len([p for p in exp_dir.iterdir() if p.is_dir()]) > samples  # the orphan is on disk
    # The searcher came back with its state: no config twice, and the reference point (the
    # first one tried) not enqueued again, as a searcher built afresh would do.
    configs = [json.dumps(t.config.to_dict(), sort_keys=True) for t in results.trials]
    assert len(set(configs)) == samples
    reference = {**REFERENCE.to_dict(), "weight_decay": WEIGHT_DECAY_RANGE[0]}
    assert sum(t.config.to_dict() == reference for t in results.trials) == 1
    resumed = sum(t.resumed for t in results.trials)
    print(f"kill-driver: resume took {resume_s:.0f} s; {resumed} trial(s) resumed from checkpoints")


def test_a_moved_and_renamed_experiment_resumed_writes_its_study_copy_where_it_is_now(
    cli, ray_cluster, ray_env, tmp_path_factory, tmp_path
):
    """The searcher's saved state names the study copy's file and study; an experiment moved
    and renamed since writes its copy in its new folder under its new name (where the analysis
    and optuna-dashboard look), and leaves the old one alone."""
    original = asha_experiment(ray_cluster, Path(ray_env["RAY_AUTH_TOKEN_PATH"]), tmp_path_factory)
    before = (original / STUDY_FILE).read_bytes()
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(original, moved)
    (moved / STUDY_FILE).unlink()  # only a write at the new place brings it back

    r = cli("search", "--address", ray_cluster.address, "--storage", moved.parent, "--name",
            moved.name, "--resume", env=ray_env)  # fmt: skip
    assert r.code == 0, r.err[-3000:]
    assert "could not write the Optuna study" not in r.err
    study = optuna.load_study(study_name=moved.name, storage=f"sqlite:///{moved / STUDY_FILE}")
    assert len(study.trials) == SAMPLES and all(t.state.is_finished() for t in study.trials)
    assert (original / STUDY_FILE).read_bytes() == before


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _described(pids: list[int]) -> str:
    return ", ".join(f"{pid} {_cmdline(pid)[:60]!r}" for pid in alive(pids))


def _wait_gone(pids: list[int], deadline: float) -> None:
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_a_cut_short_tuner_pkl_is_rebuilt_and_the_search_continues_from_its_state(
    cli, ray_cluster, ray_env, tmp_path_factory, tmp_path
):
    """A tuner.pkl cut short (a full disk, a crash mid-write) is written again from
    poptune_search.json; Tune then resumes from the trials and searcher state beside it. A searcher
    built afresh instead would start the SAMPLES trials over: the count shows which one ran."""
    original = asha_experiment(ray_cluster, Path(ray_env["RAY_AUTH_TOKEN_PATH"]), tmp_path_factory)
    exp = tmp_path / "runs" / "cut"
    shutil.copytree(original, exp)
    whole = (exp / "tuner.pkl").read_bytes()
    (exp / "tuner.pkl").write_bytes(whole[: len(whole) // 2])

    args = ("search", "--address", ray_cluster.address, "--storage", exp.parent, "--name", "cut")
    r = cli(*args, "--resume", env=ray_env)
    assert r.code == 0, r.err[-3000:]
    assert f"poptune: warning: {exp / 'tuner.pkl'} is damaged (" in r.err
    assert "search continues from its saved trials and searcher state" in r.err
    results = read_results(exp)
    assert len(results.trials) == SAMPLES and results.terminated == SAMPLES
    study = optuna.load_study(study_name="cut", storage=f"sqlite:///{exp / STUDY_FILE}")
    assert len(study.trials) == SAMPLES
    # The file is whole again: the next resume reads it without a word.
    again = cli(*args, "--resume", env=ray_env)
    assert again.code == 0, again.err[-3000:]
    assert "damaged" not in again.err


def test_a_cut_short_tuner_pkl_without_the_state_to_rebuild_it_names_the_file(
    cli, ray_cluster, ray_env, tmp_path_factory, tmp_path
):
    original = asha_experiment(ray_cluster, Path(ray_env["RAY_AUTH_TOKEN_PATH"]), tmp_path_factory)
    exp = tmp_path / "runs" / "gone"
    shutil.copytree(original, exp)
    (exp / "tuner.pkl").write_bytes(b"")
    for state in exp.glob("searcher-state-*.pkl"):
        state.unlink()

    r = cli("search", "--address", ray_cluster.address, "--storage", exp.parent, "--name",
            "gone", "--resume", env=ray_env)  # fmt: skip
    assert r.code == 2, r.err[-3000:]
    assert r.err.strip().splitlines()[-1] == (
        f"poptune: error: --resume: {exp / 'tuner.pkl'} is damaged (Ran out of input), and the "
        "experiment has no searcher-state-*.pkl to continue from; its trials cannot be resumed: "
        "start a new search with another --name (or --force)"
    )
    assert "internal error" not in r.err
