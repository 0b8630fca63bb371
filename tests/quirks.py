"""Files that look like what users really have: Kaggle-format CSVs carrying the quirks that
:func:`poptune.data.load_tracks` handles (its docstring lists them), written byte by byte so that
the tests read them the way poptune reads a download.

Each writer returns what is in the file *by construction* (how many blank rows, how many mangled
time signatures, ...), so that tests compare poptune's counts against numbers it did not compute.
The helpers at the end judge a CLI answer and read the answers documented in docs/errors.md.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from poptune.data import COLUMNS, FEATURES, ID, synthetic_tracks

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
BOM = "\ufeff"
# Names that a naive split(",") or an unquoted writer would break: commas and doubled quotes.
AWKWARD_NAMES = (
    'Hello, "World"',
    'Piano Sonata No. 14, Op. 27: "Moonlight"',
    'He said ""hi"", twice',
    "Comma, at, every, word",
)
TINY_INSTRUMENTALNESS = "7.25E-06"  # how Excel and the Kaggle file write tiny numbers


@dataclass(frozen=True)
class KaggleFile:
    """A real-format tracks CSV and the counts of what was planted in it."""

    path: Path
    rows_raw: int  # data lines, the truncated last one included
    blank_feature: int  # rows with one audio feature blank: must be dropped
    blank_other: int  # rows with a blank in a column that is not modelled: must be kept
    infinite: int  # rows with an inf feature: dropped
    out_of_range: int  # popularity above 100 or negative duration: dropped
    non_numeric: int  # rows with text in tempo: dropped
    exact_duplicates: int  # lines repeated verbatim: dropped
    mangled_time_signature: int  # kept rows with "4-Apr" style values: fixed
    kept_ids: list[str] = field(default_factory=list)  # track_id of every row that survives
    awkward_names: int = 0  # kept rows whose track_name needs quoting

    @property
    def rows_loaded(self) -> int:
        return len(self.kept_ids)

    @property
    def distinct_ids(self) -> int:
        return len(set(self.kept_ids))


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _number(value: float) -> str:
    """Integers without a decimal point and floats in their shortest form, as pandas would."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_kaggle_csv(
    path: Path,
    rows: int = 2000,
    seed: int = 0,
    *,
    broken_values: bool = False,
) -> KaggleFile:
    """Write ``rows`` synthetic tracks in the Kaggle file's format, every quirk included.

    Always: a UTF-8 BOM before ``genre``, tiny numbers as ``7.25E-06``, quoted names with commas
    and doubled quotes, ``time_signature`` as ``4-Apr``, blank values (in features: dropped; in
    other columns: kept), the same track listed under several genres, and a last line cut mid-row
    without a newline. With ``broken_values``, also ``inf``, out-of-range values, text in
    ``tempo`` and verbatim duplicate lines, each in its own rows.
    """
    # No exact duplicates to begin with, so that every duplicate in the file is one we planted.
    frame = synthetic_tracks(rows, seed).drop_duplicates(ignore_index=True)
    table = [[_number(v) if isinstance(v, (int, float, np.number)) else str(v) for v in row]
             for row in frame[list(COLUMNS)].itertuples(index=False)]  # fmt: skip
    col = {name: i for i, name in enumerate(COLUMNS)}
    planted = {"blank_feature": 0, "blank_other": 0, "infinite": 0, "out_of_range": 0,
               "non_numeric": 0, "mangled": 0, "awkward": 0}  # fmt: skip
    dropped_rows: set[int] = set()
    last = len(table) - 1  # becomes the truncated line: nothing else is planted there
    for i, row in enumerate(table[:last]):
        slot = i % 50
        if slot == 3:  # a blank audio feature, cycling through all ten
            row[col[FEATURES[(i // 50) % len(FEATURES)]]] = ""
            planted["blank_feature"] += 1
            dropped_rows.add(i)
        elif slot == 11:  # a blank key or artist: not modelled, so the row stays
            row[col["key" if i % 100 < 50 else "artist_name"]] = ""
            planted["blank_other"] += 1
        elif broken_values and slot == 17:
            row[col["loudness"] if i % 100 < 50 else col["energy"]] = (
                "inf" if i % 100 < 50 else "-inf"
            )
            planted["infinite"] += 1
            dropped_rows.add(i)
        elif broken_values and slot == 23:
            if i % 100 < 50:
                row[col["popularity"]] = "101"
            else:
                row[col["duration_ms"]] = "-5000"
            planted["out_of_range"] += 1
            dropped_rows.add(i)
        elif broken_values and slot == 29:
            row[col["tempo"]] = "fast"
            planted["non_numeric"] += 1
            dropped_rows.add(i)
        if i not in dropped_rows:
            if row[col["time_signature"]] in ("4/4", "3/4") and i % 10 == 5:
                row[col["time_signature"]] = row[col["time_signature"]][0] + "-Apr"
                planted["mangled"] += 1
            if i % 40 == 7:
                row[col["track_name"]] = AWKWARD_NAMES[(i // 40) % len(AWKWARD_NAMES)]
                planted["awkward"] += 1
    # Tiny numbers in Excel's notation, on a row that is kept.
    table[1][col["instrumentalness"]] = TINY_INSTRUMENTALNESS

    kept = [row for i, row in enumerate(table[:last]) if i not in dropped_rows]
    # Repeat rows whose time_signature is fine, so that "fixed" counts each planted value once.
    plain = [row for row in kept if not row[col["time_signature"]].endswith("-Apr")]
    duplicates = [list(row) for row in plain[5:15]] if broken_values else []
    body = table[:last] + duplicates
    text = BOM + _csv_text([list(COLUMNS), *body])
    cut = _csv_text([table[last]])
    text += cut[: len(cut) // 2]  # cut short mid-row, no newline: a download that broke off
    path.write_bytes(text.encode("utf-8"))
    return KaggleFile(
        path=path,
        rows_raw=len(body) + 1,
        blank_feature=planted["blank_feature"],
        blank_other=planted["blank_other"],
        infinite=planted["infinite"],
        out_of_range=planted["out_of_range"],
        non_numeric=planted["non_numeric"],
        exact_duplicates=len(duplicates),
        mangled_time_signature=planted["mangled"],
        kept_ids=[row[col[ID]] for row in kept],
        awkward_names=planted["awkward"],
    )


def write_frame(path: Path, frame: pd.DataFrame, **to_csv: object) -> Path:
    """Write a frame as pandas would; the plain, quirk-free case."""
    frame.to_csv(path, index=False, **to_csv)
    return path


# ----------------------------------------------------------------------------- CLI answers


def assert_one_clean_line(proc: subprocess.CompletedProcess, expected: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("poptune: error: ")
    assert expected in lines[0], lines[0]
    return lines[0]


def doc_rows(section: str) -> dict[str, tuple[int, str]]:
    """``| Input | Exit | What poptune says |`` rows of one section: title → (exit, message)."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].isdigit():
            continue
        message = re.fullmatch(r"(`+) ?(.*?) ?\1", cells[2])
        assert message, f"docs/errors.md: quote the message in backticks: {line}"
        rows[cells[0]] = (int(cells[1]), message.group(2))
    return rows
