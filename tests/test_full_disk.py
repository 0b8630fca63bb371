"""The experiment's disk fills up mid-search: the search stops with one line and exit code 4,
nothing is left half written, and once space is freed the printed command completes the search.

The disk is a real one: a tmpfs of a few MB, filled with a filler file to leave less room than
the search needs, so that the trials' own checkpoints fill it (ENOSPC from the kernel, in the
workers and in the driver). It is mounted directly where this user may (root); elsewhere inside
a user and mount namespace of its own (``unshare --user --mount``), which an unprivileged user
may make on most Linux machines, with every poptune process of the test run inside it (and a
private local Ray then, since a cluster's workers could not see the mount).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import pickle
import select
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import unittest.mock
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch

from poptune.analysis.results import read_results
from poptune.cli import main
from poptune.driver import disk_full
from poptune.driver.resume import saved_trial_counts
from poptune.layout import STUDY_FILE
from tests.quirks import doc_rows

DISK_MB = 8
# Room for the start of the search (tuner.pkl, poptune_search.json, the first state save) and a
# few of its checkpoints (~100-170 kB each), not for the 36 the search writes.
FREE_KB = 700
SAMPLES, EPOCHS = 6, 6
SEARCH = ("--synthetic-rows", "2000", "--num-samples", str(SAMPLES), "--max-epochs", str(EPOCHS),
          "--scheduler", "fifo")  # fmt: skip
EXIT_DISK_FULL = 4  # docs/errors.md
DOC_SECTION = "A full disk, Ctrl-C and SIGTERM"
# A mount namespace is used instead of a direct mount when this says so (to check that path on
# a machine where both work); otherwise only where mounting is not allowed.
FORCE_NAMESPACE = os.environ.get("POPTUNE_TEST_DISK") == "namespace"


@dataclass
class SmallDisk:
    """A tmpfs of DISK_MB: ``path`` is where poptune writes, ``here`` where this test reads it
    (the same, or the mount seen through the namespace holder's /proc/PID/root), ``prefix`` runs
    a command where the mount is."""

    path: Path
    here: Path
    prefix: list[str]

    @property
    def in_namespace(self) -> bool:
        return bool(self.prefix)

    def fill(self, leave_kb: int) -> None:
        stats = os.statvfs(self.here)
        free = stats.f_bavail * stats.f_frsize
        with (self.here / "filler").open("wb") as f:
            f.write(b"\0" * (free - leave_kb * 1024))

    def free(self) -> None:
        (self.here / "filler").unlink()


@pytest.fixture
def small_disk(tmp_path) -> Iterator[SmallDisk]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    tmpfs = ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount_point)]
    if not FORCE_NAMESPACE and subprocess.run(tmpfs, capture_output=True).returncode == 0:
        try:
            yield SmallDisk(mount_point, mount_point, [])
        finally:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
        return
    # The holder makes the namespaces, mounts the tmpfs there, and keeps them until its stdin
    # closes; commands join them with nsenter.
    holder = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--mount", "--", sys.executable, "-c",
         "import subprocess, sys; subprocess.run(sys.argv[1:], check=True); print('ready', "
         "flush=True); sys.stdin.read()", *tmpfs],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 30)
        assert ready and holder.stdout.readline().strip() == "ready", (
            "this machine allows neither a tmpfs mount nor a user namespace to make one in"
        )
        here = Path(f"/proc/{holder.pid}/root") / mount_point.relative_to("/")
        prefix = ["nsenter", f"--target={holder.pid}", "--user", "--mount",
                  "--preserve-credentials"]  # fmt: skip
        yield SmallDisk(mount_point, here, prefix)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@dataclass
class Result:
    code: int
    out: str
    err: str


def _poptune(disk: SmallDisk, *args: object, env: dict[str, str], cwd: Path) -> Result:
    proc = subprocess.run(
        [*disk.prefix, sys.executable, "-m", "poptune", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=600,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.ray
def test_a_full_disk_stops_the_search_whole_and_the_printed_command_completes_it(
    small_disk, ray_cluster, ray_env, ray_token, tmp_path
):
    storage = small_disk.path / "runs"
    exp = storage / "full"
    exp_here = small_disk.here / "runs" / "full"
    if small_disk.in_namespace:  # the trials must write where the mount is: a local Ray
        env, where = {"RAY_ADDRESS": "", "RAY_AUTH_TOKEN_PATH": str(ray_token)}, ()
    else:
        env, where = ray_env, ("--address", ray_cluster.address)
    small_disk.fill(leave_kb=FREE_KB)

    started = time.monotonic()
    r = _poptune(small_disk, "search", *SEARCH, *where, "--storage", storage, "--name", "full",
                 env=env, cwd=tmp_path)  # fmt: skip
    assert r.code == EXIT_DISK_FULL, r.err[-4000:]
    last = r.err.strip().splitlines()[-1]
    resume = shlex.join(["poptune", "search", "--storage", str(storage), "--name", "full",
                         "--resume", *where])  # fmt: skip
    assert last == (
        f"poptune: error: {exp}: the disk is full (No space left on device); the search stopped "
        "with the experiment saved as of its last complete write. Free space there, then resume "
        f"with: {resume}"
    )
    assert doc_rows(DOC_SECTION)["The experiment's disk fills during the search"] == (
        EXIT_DISK_FULL,
        last.split(f"{exp}: ", 1)[1].split(" poptune search --storage", 1)[0]
        + " poptune search --storage",
    )
    assert "Traceback" not in r.err and "Tuner.restore" not in r.err
    # It stopped at the first trial the disk failed, instead of failing every trial in turn.
    assert "ERRORED" not in r.out
    saved = saved_trial_counts(str(exp_here))
    assert saved.errored == 0 and saved.terminated < SAMPLES
    _assert_whole(exp_here, tmp_path)  # even now, with the disk full, every file is whole

    stopped = time.monotonic()
    small_disk.free()
    command = shlex.split(last.split("resume with: ", 1)[1])
    again = _poptune(small_disk, *command[1:], env=env, cwd=tmp_path)
    assert again.code == 0, again.err[-4000:]
    print(f"full disk: stopped after {stopped - started:.0f} s, resumed in "
          f"{time.monotonic() - stopped:.0f} s")  # fmt: skip
    results = read_results(exp_here)
    assert len(results.trials) == SAMPLES
    assert results.terminated == SAMPLES and results.errored == 0
    _assert_whole(exp_here, tmp_path)
    json.loads((exp_here / "best_config.json").read_text())
    study = optuna.load_study(
        study_name="full", storage=f"sqlite:///{_copied_db(exp_here / STUDY_FILE, tmp_path)}"
    )
    assert len(study.trials) == SAMPLES and all(t.state.is_finished() for t in study.trials)
    for trial_dir in (p for p in exp_here.iterdir() if p.is_dir()):
        kept = sorted(trial_dir.glob("checkpoint_*"))
        assert kept and (kept[-1] / "training_state.pt").is_file(), trial_dir


def test_a_full_disk_while_analyzing_names_the_folder_and_the_command_that_finishes(
    tmp_path, monkeypatch, capsys
):
    """The analysis writes through the same atomic writes as the search (what a real full disk
    does to those is proved above); here only the answer: exit 4, the folder, the command."""

    def full(exp_dir, settings, *, log):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(exp_dir / "analysis" / "x"))

    monkeypatch.setattr("poptune.analysis.analyze.analyze", full)
    exp = tmp_path / "runs" / "exp"
    assert main(["analyze", str(exp), "--seeds", "2"]) == EXIT_DISK_FULL
    line = capsys.readouterr().err.strip()
    code, message = doc_rows(DOC_SECTION)["The analysis's disk fills"]
    assert code == EXIT_DISK_FULL
    assert line == (
        f"poptune: error: {exp}/analysis: {message} {shlex.join([str(exp), '--seeds', '2'])}"
    )


def _assert_whole(exp: Path, scratch: Path) -> None:
    """Every file of the experiment reads as what it is: no temporary file left, no JSON, CSV,
    pickle, SQLite database or checkpoint cut short."""
    files = [p for p in exp.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")], "temporary files left behind"
    for path in files:
        data = path.read_bytes()
        if path.name == "result.json":  # JSON lines: one result per epoch
            for line in data.decode().splitlines():
                json.loads(line)
        elif path.name.startswith("search_gen_state-"):  # a pickle, whatever Tune names it
            pickle.loads(data)
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".pkl":
            pickle.loads(data)
        elif path.suffix == ".csv":
            rows = list(csv.reader(data.decode().splitlines()))
            assert all(len(row) == len(rows[0]) for row in rows), path
        elif path.suffix == ".pt":
            state = torch.load(path, weights_only=True)
            assert state["history"], path
        elif path.suffix == ".db":
            with contextlib.closing(sqlite3.connect(_copied_db(path, scratch))) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), path


def _copied_db(path: Path, scratch: Path) -> Path:
    """A copy of the SQLite file ``path`` (with its write-ahead log) to open: SQLite cannot
    open one seen through another mount namespace's /proc/PID/root."""
    copy = Path(tempfile.mkdtemp(dir=scratch)) / path.name
    for part in (path, path.with_name(path.name + "-wal")):
        if part.exists():
            shutil.copyfile(part, copy.with_name(part.name))
    return copy


def _failed_trial(tmp_path: Path, error: str, failures: int) -> types.SimpleNamespace:
    error_file = tmp_path / "error.txt"
    error_file.write_text(f"Failure # 1 (occurred at now)\nRuntimeError: lost\n\n"
                          f"Failure # 2 (occurred at now)\n{error}\n")  # fmt: skip
    metadata = types.SimpleNamespace(num_failures=failures, invalidate_cache=lambda: None)
    return types.SimpleNamespace(pickled_error_file=None, error_file=error_file,
                                 run_metadata=metadata)  # fmt: skip


def test_a_full_disk_failure_is_forgiven_only_where_it_stops_the_search(tmp_path):
    full = f"OSError: [Errno {errno.ENOSPC}] No space left on device"
    # Only the newest failure counts: an older full disk, now another error, is the trial's own.
    assert not disk_full.trial_failed(_failed_trial(tmp_path, "ValueError: x", 2), retried=True)
    # With no watch nothing would stop the search: the failure counts, or retries never end.
    unwatched = _failed_trial(tmp_path, full, 2)
    assert disk_full.trial_failed(unwatched, retried=True)
    assert unwatched.run_metadata.num_failures == 2
    stops = []
    stop = unittest.mock.patch.object(disk_full, "stop_like_ctrl_c", lambda: stops.append(1))
    with disk_full.watching_the_disk() as watch, stop:
        retried = _failed_trial(tmp_path, full, 2)
        assert disk_full.trial_failed(retried, retried=True)
        assert disk_full.trial_failed(_failed_trial(tmp_path, full, 1), retried=False)
    assert retried.run_metadata.num_failures == 1  # not one of its --max-failures
    assert stops == [1] and watch.errored == 1 and watch.cause == os.strerror(errno.ENOSPC)
