"""Reading a tracks CSV the way real copies of the Kaggle file come: quirks handled, never hidden.

Everything that is cleaned up is counted in a :class:`LoadReport` attached to the frame
(``frame.attrs["load_report"]``), so that every output can say what was dropped and why.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from poptune.data._schema import FEATURES, RANGES, TARGET
from poptune.errors import DataError

# A column is treated as "not numeric" (an error) rather than "a few broken rows" (a clean-up)
# when more than this share of its non-blank values fail to parse.
_NON_NUMERIC_ERROR_SHARE = 0.5
_SPREADSHEET_TIME_SIGNATURE = re.compile(r"^(\d)-Apr$")  # Excel turned "4/4" into 4-Apr


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_tracks` read, fixed and dropped; ``dropped`` maps a reason to a count."""

    source: str
    sha256: str
    rows_raw: int
    rows_used: int
    dropped: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    synthetic: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        kind = "synthetic data" if self.synthetic else self.source
        parts = [f"{kind}: {self.rows_raw:,} rows read, {self.rows_used:,} used"]
        parts += [f"{n:,} dropped ({why})" for why, n in self.dropped.items() if n]
        parts += [f"{n:,} fixed ({what})" for what, n in self.fixed.items() if n]
        return "; ".join(parts)


def load_tracks(path: str | Path, *, require_target: bool = True) -> pd.DataFrame:
    """Read and validate a tracks CSV (plain or ``.gz``), as real copies of the Kaggle file come.

    Handled: gzip whatever the file's name, a UTF-8 byte-order mark before ``genre`` (and a
    stray Latin-1 byte in a name), ``7.25E-06``-style numbers, quoted names with commas and
    doubled quotes, semicolon (decimal-comma), tab or pipe delimiters, ``time_signature``
    mangled by spreadsheets into ``4-Apr`` (fixed back to ``4/4``), and a truncated last line.
    Dropped and counted: malformed lines, blank or non-numeric values, ``inf``, values outside
    a column's range, exact duplicate rows.

    Returns a frame with the file's columns, numeric features and target as float64, and the
    :class:`LoadReport` in ``frame.attrs["load_report"]``. Raises :class:`DataError` for a file
    that is not a usable tracks CSV.
    """
    path = Path(path)
    raw = _read_bytes(path)
    text = _decode(path, raw)
    text, truncated = _drop_truncated_last_line(text)
    sep = _sniff_separator(text)
    frame, bad_lines = _parse(path, text, sep)
    rows_raw = len(frame) + bad_lines + truncated
    required = (*FEATURES, TARGET) if require_target else FEATURES
    _check_columns(path, frame, required)

    dropped = {"truncated last line": truncated, "malformed line": bad_lines}
    fixed: dict[str, int] = {}
    numeric_cols = [c for c in (*FEATURES, TARGET) if c in frame.columns]
    for col in numeric_cols:
        frame[col] = _to_numeric(path, frame[col], sep)
    frame, dropped = _drop_bad_rows(frame, numeric_cols, dropped)
    if "time_signature" in frame.columns:
        frame, fixed["time_signature 'N-Apr' -> 'N/4'"] = _fix_time_signature(frame)
    n_before = len(frame)
    frame = frame.drop_duplicates(ignore_index=True)
    dropped["exact duplicate row"] = n_before - len(frame)
    if frame.empty:
        raise DataError(
            f"{path}: no usable rows left after dropping {rows_raw:,} broken ones "
            f"({_reasons(dropped)}); check that the file is a tracks CSV with numeric features"
        )
    frame.attrs["load_report"] = LoadReport(
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        rows_raw=rows_raw,
        rows_used=len(frame),
        dropped={k: v for k, v in dropped.items() if v},
        fixed={k: v for k, v in fixed.items() if v},
    )
    return frame


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (or omit --data for built-in data)")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the CSV file inside it")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); check its permissions") from exc
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: is a damaged gzip file ({exc}); re-download it") from exc
    if not raw.strip():
        raise DataError(f"{path}: is empty; expected a CSV with a header row and track rows")
    return raw


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw[:65536]:
        raise DataError(f"{path}: is a binary file, not a CSV; pass the tracks CSV")
    try:
        # utf-8-sig drops the byte-order mark that real copies carry before `genre`.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Names are not modelled; a stray Latin-1 byte in a track name must not reject the file.
        return raw.decode("latin-1")


def _drop_truncated_last_line(text: str) -> tuple[str, int]:
    """A file cut short ends mid-row without a newline; such a row is dropped, not guessed."""
    if text.endswith(("\n", "\r")):
        return text, 0
    head, _, last = text.rpartition("\n")
    if not head:
        return text, 0  # a header alone: reported as "no rows" later
    header = next(csv.reader([text.partition("\n")[0].rstrip("\r")]))
    fields = next(csv.reader([last.rstrip("\r")]), [])
    unbalanced_quote = last.count('"') % 2 == 1
    if len(fields) < len(header) or unbalanced_quote:
        return head + "\n", 1
    return text, 0


def _sniff_separator(text: str) -> str:
    header = text.partition("\n")[0]
    if "," in header:
        return ","
    for sep in (";", "\t", "|"):
        if sep in header:
            return sep
    return ","


def _parse(path: Path, text: str, sep: str) -> tuple[pd.DataFrame, int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                on_bad_lines="warn",
            )
        except (pd.errors.ParserError, csv.Error) as exc:
            raise DataError(f"{path}: is not a readable CSV ({exc}); check the file") from exc
        except pd.errors.EmptyDataError as exc:
            raise DataError(f"{path}: has no header row; expected a tracks CSV") from exc
    bad = sum(str(w.message).count("Skipping line") for w in caught)
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame, bad


def _check_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a tracks CSV needs "
            f"{', '.join(required)} (found: {', '.join(map(str, frame.columns[:20]))})"
        )
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows; expected one row per track")


def _to_numeric(path: Path, values: pd.Series, sep: str) -> pd.Series:
    text = values.str.strip()
    if sep == ";":  # semicolon files come from locales that write decimal commas
        text = text.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(text, errors="coerce")
    non_blank = text != ""
    failed = non_blank & numbers.isna() & ~text.str.lower().isin({"nan", "inf", "-inf"})
    if non_blank.any() and failed.sum() > _NON_NUMERIC_ERROR_SHARE * non_blank.sum():
        row = int(failed.idxmax()) + 2  # +1 for the header, +1 for 1-based line numbers
        raise DataError(
            f"{path}: column {values.name!r} is not numeric (line {row}: "
            f"{values.iloc[failed.argmax()]!r}; {int(failed.sum()):,} of {int(non_blank.sum()):,} "
            "values are not numbers); "
            "check the column order and delimiter"
        )
    return numbers.astype("float64")


def _drop_bad_rows(
    frame: pd.DataFrame, numeric_cols: list[str], dropped: dict[str, int]
) -> tuple[pd.DataFrame, dict[str, int]]:
    values = frame[numeric_cols].to_numpy(dtype=np.float64)
    missing = np.isnan(values).any(axis=1)
    infinite = np.isinf(values).any(axis=1) & ~missing
    in_range = np.ones(len(frame), dtype=bool)
    for col in numeric_cols:
        lo, hi = RANGES[col]
        v = frame[col].to_numpy()
        if lo is not None:
            in_range &= ~(v < lo)
        if hi is not None:
            in_range &= ~(v > hi)
    out_of_range = ~in_range & ~missing & ~infinite
    dropped = {
        **dropped,
        "blank or non-numeric value": int(missing.sum()),
        "infinite value": int(infinite.sum()),
        "value out of range": int(out_of_range.sum()),
    }
    keep = ~(missing | infinite | out_of_range)
    return frame.loc[keep].reset_index(drop=True), dropped


def _fix_time_signature(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    ts = frame["time_signature"].astype(str)
    mangled = ts.str.match(_SPREADSHEET_TIME_SIGNATURE)
    frame = frame.assign(
        time_signature=ts.str.replace(_SPREADSHEET_TIME_SIGNATURE, r"\1/4", regex=True)
    )
    return frame, int(mangled.sum())


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {why}" for why, n in counts.items() if n) or "none"
