"""Bad options, config files and experiment folders: exit 2, one line naming the option and the
fix, and no slow work first (no data loaded, no Ray started: each answer comes in seconds).

Also "nothing lost": an existing experiment is refused without --resume/--force, and the atomic
writer leaves either the old file or the new one, never a mix and never a temp file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from poptune import cli, files
from tests.quirks import assert_one_clean_line, doc_rows

POPTUNE = [sys.executable, "-m", "poptune"]
# Loading nothing and starting nothing, an answer takes an interpreter start and a few imports;
# the bound is loose because the machine may be busy with other tests.
FAST_S = 30.0


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GPU_TITLE = "`--gpus-per-trial 0.5` on a machine without a GPU"
EXISTING_TITLE = "`search` into an existing experiment"


@dataclass(frozen=True)
class Case:
    title: str  # the row title in docs/errors.md
    args: tuple[str, ...]
    error: str  # must appear in the one stderr line
    # A subprocess per case costs an interpreter and the data stack's imports (~1.5 s of CPU);
    # checks that differ from their neighbours only in the option are run through `main` in
    # this process: the same code, exit code and stderr, minus the interpreter start.
    in_process: bool = False


YAML_FILES = {
    "broken.yaml": "num_samples: 4\nmax_epochs: [1, 2\n",
    "unknown.yaml": "num_samples: 4\nlearning_rate: 0.1\n",
    "wrongtype.yaml": "max_epochs: twelve\n",
    "list.yaml": "- num_samples\n- 4\n",
    "notes.txt": "a file where a folder should be\n",
}
CASES = [
    Case("`--num-samples 0`", ("search", "--num-samples", "0"),
         "--num-samples must be a positive integer, but got 0"),
    Case("`--max-epochs 0`", ("search", "--max-epochs", "0"),
         "--max-epochs must be a positive integer, but got 0"),
    Case("`--max-epochs -3`", ("run", "--max-epochs", "-3"),
         "--max-epochs must be a positive integer, but got -3"),
    Case("`--max-epochs 1000000000`", ("run", "--max-epochs", "1000000000"),
         "--max-epochs must be at most 100000 (no trial here runs that long; to search for a "
         "while, give --time-budget), but got 1000000000"),
    Case("`--num-samples abc`", ("search", "--num-samples", "abc"),
         "argument --num-samples: expected an integer, but got 'abc'"),
    Case("`--max-concurrent 512` on this machine", ("search", "--max-concurrent", "512"),
         "--max-concurrent 512: this machine fits only"),
    Case("`--cpus-per-trial 0`", ("search", "--cpus-per-trial", "0"),
         "--cpus-per-trial must be > 0, but got 0", in_process=True),
    Case("`--cpus-per-trial 4096`", ("search", "--cpus-per-trial", "4096"),
         "--cpus-per-trial 4096: this machine has only", in_process=True),
    Case("`--gpus-per-trial -1`", ("search", "--gpus-per-trial", "-1"),
         "--gpus-per-trial must be >= 0, but got -1", in_process=True),
    Case("`--time-budget soon`", ("search", "--time-budget", "soon"),
         "argument --time-budget: expected a duration such as 90, 90s, 10m or 2h, but got 'soon'",
         in_process=True),
    Case("`--time-budget 0`", ("search", "--time-budget", "0"),
         "--time-budget must be a positive duration such as 90, 10m or 2h, but got 0 s",
         in_process=True),
    Case("`--sampler grid`", ("search", "--sampler", "grid"),
         "--sampler must be one of tpe, random, but got 'grid'", in_process=True),
    Case("`--synthetic-difficulty hard`", ("search", "--synthetic-difficulty", "hard"),
         "--synthetic-difficulty must be one of easy, real, but got 'hard'", in_process=True),
    Case("`poptune run --finalists 0`", ("run", "--finalists", "0"),
         "--finalists must be a positive integer, but got 0", in_process=True),
    Case("`--scheduler hyperband`", ("search", "--scheduler", "hyperband"),
         "--scheduler must be one of asha, fifo, but got 'hyperband'"),
    Case("`--dedupe genre`", ("search", "--dedupe", "genre"),
         "--dedupe must be one of track_id, none, but got 'genre'", in_process=True),
    Case("`--storage ftp://x`", ("search", "--storage", "ftp://x"),
         "--storage scheme 'ftp' is not supported; use a local path or one of s3://"),
    Case("`--storage` naming a file", ("search", "--storage", "notes.txt"),
         "--storage notes.txt: is a file, not a folder; pass a folder (it is created if missing)"),
    Case("`--storage` inside a file", ("run", "--storage", "notes.txt/runs"),
         "--storage notes.txt/runs: is inside notes.txt, a file, not a folder", in_process=True),
    Case("`estimate --storage` naming a file", ("estimate", "--storage", "notes.txt"),
         "--storage notes.txt: is a file, not a folder", in_process=True),
    Case("`--mlflow-tracking-uri ftp://x`", ("run", "--mlflow-tracking-uri", "ftp://x"),
         "--mlflow-tracking-uri scheme 'ftp' is not supported; use a local folder or one of file:",
         in_process=True),
    Case("`--name a/b`", ("search", "--name", "a/b"),
         "--name must be a plain folder name, but got 'a/b'", in_process=True),
    Case("`--resume --force`", ("search", "--resume", "--force", "--name", "x"),
         "--resume and --force contradict each other; pass one of them", in_process=True),
    Case("`--resume` with no experiment", ("search", "--resume", "--name", "nothing"),
         "there is no experiment at", in_process=True),
    Case("`poptune run --seeds 0`", ("run", "--seeds", "0"),
         "--seeds must be a positive integer, but got 0", in_process=True),
    Case("An unknown option", ("search", "--learning-rate", "0.1"),
         "unrecognized arguments: --learning-rate 0.1"),
    Case("`--address nonsense`", ("search", "--address", "nonsense"),
         "--address 'nonsense' is not HOST:PORT (e.g. 127.0.0.1:6379 or ray://HOST:10001)"),
    Case("`--address` where no Ray listens", ("search", "--address", "127.0.0.1:{port}"),
         "cannot reach a Ray cluster there (Connection refused); check that `ray start --head`"),
    Case("`--config` that is not valid YAML", ("search", "--config", "broken.yaml"),
         "--config broken.yaml: not valid YAML (line 3, column 1: expected ',' or ']'"),
    Case("`--config` with an unknown key", ("search", "--config", "unknown.yaml"),
         "--config unknown.yaml: unknown key 'learning_rate'; known keys: address, "),
    Case("`--config` with a wrong value", ("search", "--config", "wrongtype.yaml"),
         "--config wrongtype.yaml: max_epochs: expected an integer, but got 'twelve'"),
    Case("`--config` holding a list", ("search", "--config", "list.yaml"),
         "--config list.yaml: expected a mapping of option: value"),
    Case("`--config` that does not exist", ("search", "--config", "none.yaml"),
         "--config none.yaml: cannot read it (No such file or directory)"),
    Case("`analyze` on a missing folder", ("analyze", "runs/nothing"),
         "runs/nothing: no such experiment directory; pass <storage>/<name>", in_process=True),
    Case("`analyze` on a folder poptune did not make", ("analyze", "."),
         ".: has no poptune_search.json, so it was not made by `poptune search`",
         in_process=True),
    Case("`export` before any search", ("export", "runs/nothing"),
         "runs/nothing/best_config.json: not found; run `poptune search`", in_process=True),
    Case("`predict` with a folder that is not a model",
         ("predict", ".", "--data", "t.csv", "--out", "p.csv"),
         ".: not a poptune model bundle (needs bundle.json and model.safetensors)",
         in_process=True),
]  # fmt: skip


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    """Every case through the real CLI, four at a time: title → (process, seconds)."""
    root = tmp_path_factory.mktemp("settings")
    port = closed_port()

    def answer(i_case: tuple[int, Case]) -> tuple[subprocess.CompletedProcess, float]:
        i, case = i_case
        folder = root / f"case{i}"
        folder.mkdir()
        for name, text in YAML_FILES.items():
            (folder / name).write_text(text)
        args = [a.format(port=port) for a in case.args]
        started = time.monotonic()
        if case.in_process:
            proc = run_main(args, cwd=folder)
        else:
            proc = subprocess.run(
                [*POPTUNE, *args],
                capture_output=True,
                text=True,
                cwd=folder,
                # No RAY_ADDRESS from the environment: no --address must mean a local Ray here.
                env={**os.environ, "RAY_ADDRESS": ""},
                timeout=120,
            )
        return proc, time.monotonic() - started

    # In-process cases first and one by one (they change the working directory), then the
    # subprocesses four at a time.
    results = {c.title: answer((i, c)) for i, c in enumerate(CASES) if c.in_process}
    others = [(i, c) for i, c in enumerate(CASES) if not c.in_process]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results.update(zip((c.title for _, c in others), pool.map(answer, others), strict=True))
    return results


def run_main(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`poptune ARGS` through `cli.main` in this process, as `python -m poptune` would run it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.title)
def test_bad_settings_exit_2_with_one_line_before_any_slow_work(answers, case):
    proc, seconds = answers[case.title]
    assert_one_clean_line(proc, case.error)
    assert "loading" not in proc.stdout  # refused before the data was read
    assert seconds < FAST_S


def test_gpus_on_a_machine_without_one(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU that torch can use")
    proc = subprocess.run(
        [*POPTUNE, "search", "--gpus-per-trial", "0.5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RAY_ADDRESS": ""},
        timeout=120,
    )
    line = assert_one_clean_line(
        proc, "--gpus-per-trial 0.5: this machine has 0 GPU(s) that torch can use"
    )
    assert "loading" not in proc.stdout
    code, message = doc_rows("Options and folders")[GPU_TITLE]
    assert code == 2 and message in line


def test_docs_list_every_settings_case_with_its_real_answer(answers):
    rows = doc_rows("Options and folders")
    # Every documented row is checked: here, or by the two tests that name their title.
    assert set(rows) == {case.title for case in CASES} | {GPU_TITLE, EXISTING_TITLE}
    for case in CASES:
        code, message = rows[case.title]
        proc, _ = answers[case.title]
        assert code == 2 == proc.returncode
        assert message in proc.stderr, (case.title, message, proc.stderr)


# ----------------------------------------------------------------------------- nothing lost


def test_search_refuses_an_existing_experiment_before_starting_ray(tmp_path):
    exp = tmp_path / "runs" / "mine"
    exp.mkdir(parents=True)
    (exp / "precious.txt").write_text("results")
    proc = subprocess.run(
        [*POPTUNE, "search", "--storage", "runs", "--name", "mine", "--synthetic-rows", "300"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "RAY_ADDRESS": ""},
        timeout=120,
    )
    line = assert_one_clean_line(proc, f"experiment {exp} already exists; pass --resume")
    assert "--force to replace it" in line
    code, message = doc_rows("Options and folders")[EXISTING_TITLE]
    assert code == 2 and message in line
    assert (exp / "precious.txt").read_text() == "results"
    assert sorted(p.name for p in exp.iterdir()) == ["precious.txt"]


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json_atomic(path, {"rmse": 1.0})
    files.write_json_atomic(path, {"rmse": 2.0})
    assert json.loads(path.read_text()) == {"rmse": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    files.write_json_atomic(path, {"rmse": 1.0})
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        files.write_json_atomic(path, {"rmse": 2.0, "big": "x" * 100_000})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert json.loads(path.read_text()) == {"rmse": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_an_interrupt_mid_write_keeps_the_old_file_too(tmp_path, monkeypatch):
    """Ctrl-C is a BaseException, not an Exception: the temp file must still go."""
    path = tmp_path / "best_config.json"
    files.write_text_atomic(path, "old\n")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["best_config.json"]


def test_nan_is_refused_rather_than_written(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        files.write_json_atomic(path, {"test": {"rmse": float("nan")}})
    assert not path.exists() and list(tmp_path.iterdir()) == []
