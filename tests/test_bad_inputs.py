"""Bad data files, given to poptune as a user would: each gets a clean-up with counts, or exit 2
and one line on stderr that names the file, where the problem is and what to do.

Files that must be refused run through the real CLI (a subprocess each, run side by side): they
fail while loading, before Ray starts. Files that must work are checked in-process through
`load_tracks` + `prepare`, the code the CLI runs before the search; test_data_load.py takes one of
them all the way through `poptune run` on Ray. docs/errors.md is checked against these answers.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poptune import cli
from poptune.data import FEATURES, load_tracks, prepare, synthetic_tracks
from tests.quirks import DOC, assert_one_clean_line, doc_rows

POPTUNE = [sys.executable, "-m", "poptune"]


def base_tracks() -> pd.DataFrame:
    """60 distinct tracks, no duplicates: the only problems are the ones a case plants."""
    frame = synthetic_tracks(200, seed=5).drop_duplicates("track_id", ignore_index=True)
    return frame.head(60).copy()


def _csv(frame: pd.DataFrame, **kwargs: object) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


def _with(column: str, rows: list[int], value: object) -> bytes:
    frame = base_tracks().astype({column: object})
    frame.loc[rows, column] = value
    return _csv(frame)


def _identical_features() -> bytes:
    frame = base_tracks()
    for col in FEATURES:
        frame[col] = frame[col].iloc[0]
    return _csv(frame)


def _duplicated_rows() -> bytes:
    frame = base_tracks()
    return _csv(pd.concat([frame, frame.iloc[10:15]], ignore_index=True))


def _truncated() -> bytes:
    text = _csv(base_tracks())
    return text[: len(text) - 60]  # the last row loses its tail and its newline


def _unquoted_comma() -> bytes:
    lines = _csv(base_tracks()).decode().splitlines()
    cells = lines[5].split(",")
    cells[2] = "Hello, World"  # one field too many
    lines[5] = ",".join(cells)
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Case:
    """One bad file: how to make it, the --data argument, and what poptune must answer."""

    title: str  # the row title in docs/errors.md
    content: Callable[[], bytes] | None  # None: nothing is written (see ``arg``)
    arg: str = "tracks.csv"
    error: str | None = None  # exit 2 and this text on stderr; None: the file must work
    dropped: dict[str, int] = field(default_factory=dict)  # the clean-up a working file gets

    def make(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.arg
        if self.content is not None:
            path.write_bytes(self.content())
        elif self.arg == "downloads":
            path.mkdir()
        return path


REFUSED = [
    Case("Empty file", lambda: b"", error="tracks.csv: is empty; expected a CSV with a header"),
    Case(
        "Header only",
        lambda: _csv(base_tracks().head(0)),
        error="tracks.csv: has a header but no data rows",
    ),
    Case(
        "No `popularity` column",
        lambda: _csv(base_tracks().drop(columns="popularity")),
        error="tracks.csv: missing column(s) popularity; a tracks CSV needs",
    ),
    Case(
        "No `tempo` column",
        lambda: _csv(base_tracks().drop(columns="tempo")),
        error="tracks.csv: missing column(s) tempo; a tracks CSV needs",
    ),
    Case(
        "Text in most `tempo` cells",
        lambda: _with("tempo", list(range(3, 60)), "allegro"),
        error="tracks.csv: column 'tempo' is not numeric (line 5: 'allegro'; 57 of 60 values",
    ),
    Case(
        "Popularity outside 0–100 in every row",
        lambda: _with("popularity", list(range(60)), 250),
        error="tracks.csv: no usable rows left after dropping 60 broken ones (60 value out of",
    ),
    Case(
        "A directory",
        None,
        arg="downloads",
        error="downloads: is a directory; pass the CSV file inside it",
    ),
    Case(
        "A path that does not exist",
        None,
        arg="missing.csv",
        error="missing.csv: no such file; check the path",
    ),
    Case(
        "A binary file",
        lambda: bytes(range(256)) * 20,
        arg="tracks.xlsx",
        error="tracks.xlsx: is a binary file, not a CSV; pass the tracks CSV",
    ),
    Case(
        "A damaged gzip file",
        lambda: gzip.compress(_csv(base_tracks()))[:300],
        arg="tracks.csv.gz",
        error="tracks.csv.gz: is a damaged gzip file",
    ),
    Case(
        "One row",
        lambda: _csv(base_tracks().head(1)),
        error="tracks.csv: only 1 usable row(s) after cleaning; poptune needs at least 20",
    ),
    Case(
        "All feature values identical",
        _identical_features,
        error="tracks.csv: every audio feature has the same value in all 60 rows",
    ),
]

WORKS = [
    Case(
        "Extra unknown columns",
        lambda: _csv(base_tracks().assign(my_rating=5, notes="x")),
    ),
    Case(
        "Text in a few `tempo` cells",
        lambda: _with("tempo", [3, 8], "fast"),
        dropped={"blank or non-numeric value": 2},
    ),
    Case(
        "Blank cells",
        lambda: _with("energy", [1, 2, 3], ""),
        dropped={"blank or non-numeric value": 3},
    ),
    Case(
        "`inf` values",
        lambda: _with("loudness", [4, 5], "inf"),
        dropped={"infinite value": 2},
    ),
    Case(
        "Popularity outside 0–100",
        lambda: _with("popularity", [1, 2], 101),
        dropped={"value out of range": 2},
    ),
    Case(
        "Negative `duration_ms`",
        lambda: _with("duration_ms", [7], -1000),
        dropped={"value out of range": 1},
    ),
    Case(
        "Byte-order mark and Windows line endings",
        lambda: b"\xef\xbb\xbf" + _csv(base_tracks()).replace(b"\n", b"\r\n"),
    ),
    Case("Truncated last row", _truncated, dropped={"truncated last line": 1}),
    Case("Fully duplicated rows", _duplicated_rows, dropped={"exact duplicate row": 5}),
    Case(
        "A row with an unquoted comma",
        _unquoted_comma,
        dropped={"malformed line": 1},
    ),
    Case(
        "Semicolon-delimited, decimal commas",
        lambda: _csv(base_tracks(), sep=";", decimal=","),
    ),
    Case(
        "Gzip-compressed CSV",
        lambda: gzip.compress(_csv(base_tracks())),
        arg="tracks.csv.gz",
    ),
]


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*POPTUNE, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """`poptune search --data FILE` for every refused case, several at once (each waits on I/O
    and imports more than on CPU)."""
    root = tmp_path_factory.mktemp("refused")

    def answer(i_case: tuple[int, Case]) -> subprocess.CompletedProcess:
        i, case = i_case
        folder = root / f"case{i}"
        case.make(folder)
        return run_cli(
            ["search", "--data", case.arg, "--storage", "runs", "--name", "x"], cwd=folder
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(answer, enumerate(REFUSED)))
    for i in range(len(REFUSED)):  # refused before any work: no experiment folder made
        assert not (root / f"case{i}" / "runs").exists()
    return {case.title: proc for case, proc in zip(REFUSED, results, strict=True)}


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.title)
def test_refused_files_exit_2_with_one_line_naming_file_problem_and_fix(refused, case):
    line = assert_one_clean_line(refused[case.title], case.error)
    assert line.startswith(f"poptune: error: {case.arg}: ")  # the file, as the user typed it
    # Every message says what to do or what was expected, not only what went wrong.
    assert re.search(
        r"; (check|pass|expected|re-download|a tracks CSV needs|poptune needs)", line
    ), line
    assert "searching" not in refused[case.title].stdout  # no search was started


@pytest.mark.parametrize("case", WORKS, ids=lambda c: c.title)
def test_working_files_are_cleaned_up_with_counts(tmp_path, case):
    path = case.make(tmp_path)
    frame = load_tracks(path)
    report = frame.attrs["load_report"]
    assert report.dropped == case.dropped
    rows_in_file = 60 + case.dropped.get("exact duplicate row", 0)
    assert report.rows_raw == rows_in_file
    assert report.rows_used == len(frame) == rows_in_file - sum(case.dropped.values())
    prepared = prepare(frame, seed=0)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.isfinite(getattr(prepared, name)).all(), name  # nothing broken gets through
    assert prepared.info.dropped == case.dropped  # and the counts travel into the results
    for why, n in case.dropped.items():
        assert f"{n:,} dropped ({why})" in report.summary()


def test_an_unreadable_file_is_refused_with_one_line(tmp_path, monkeypatch, capsys):
    """Tests run as root here, where chmod 000 stops nothing; so the read itself is made to fail
    the way it does for an ordinary user, and `main` runs in-process (its real exit code and
    stderr). test_an_unreadable_file_through_the_cli does it for real where it can."""
    path = tmp_path / "tracks.csv"
    path.write_bytes(_csv(base_tracks()))
    real_read = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self.name == "tracks.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code = cli.main(["search", "--data", str(path), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    message = "tracks.csv: cannot be read (Permission denied); check its permissions"
    assert err == f"poptune: error: {tmp_path}/{message}\n"
    assert f"`{message}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_an_unreadable_file_through_the_cli(tmp_path):
    (tmp_path / "tracks.csv").write_bytes(_csv(base_tracks()))
    (tmp_path / "tracks.csv").chmod(0)
    proc = run_cli(["search", "--data", "tracks.csv"], cwd=tmp_path)
    assert_one_clean_line(proc, "tracks.csv: cannot be read (Permission denied)")


def test_debug_shows_the_traceback_for_the_same_error(tmp_path):
    proc = run_cli(["--debug", "search", "--data", "missing.csv"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr


# ----------------------------------------------------------------------------- docs/errors.md


def test_docs_list_every_data_case_with_its_real_answer(refused, tmp_path):
    rows = doc_rows("Data files")
    assert set(rows) == {c.title for c in REFUSED + WORKS}
    for case in REFUSED:
        code, message = rows[case.title]
        assert code == 2 == refused[case.title].returncode
        assert message in refused[case.title].stderr, (case.title, message)
    for i, case in enumerate(WORKS):
        code, message = rows[case.title]
        assert code == 0
        frame = load_tracks(case.make(tmp_path / f"w{i}"))
        said = frame.attrs["load_report"].summary().replace(str(tmp_path / f"w{i}") + "/", "")
        assert message in said, (case.title, message, said)
