"""Where a run's tracks come from: a CSV path or the built-in synthetic generator.

A search records its :class:`DataSource` so that ``analyze`` can rebuild exactly the same split
later, and can refuse when the file on disk is no longer the one that was searched.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poptune.data._schema import DEFAULT_ROWS, SYNTHETIC_DIFFICULTIES
from poptune.errors import DataError, UsageError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class DataSource:
    """``path`` set: a CSV file; ``path`` None: ``synthetic_tracks(rows, seed, difficulty)``."""

    path: str | None = None
    synthetic_rows: int = DEFAULT_ROWS
    synthetic_seed: int = 0
    synthetic_difficulty: str = "easy"

    def __post_init__(self) -> None:
        if self.synthetic_difficulty not in SYNTHETIC_DIFFICULTIES:
            raise UsageError(
                f"--synthetic-difficulty must be one of {', '.join(SYNTHETIC_DIFFICULTIES)}, "
                "but got "
                f"{self.synthetic_difficulty!r}"
            )

    @property
    def synthetic(self) -> bool:
        return self.path is None

    def describe(self) -> str:
        if self.synthetic:
            rows, seed = self.synthetic_rows, self.synthetic_seed
            difficulty = "" if self.synthetic_difficulty == "easy" else ", real difficulty"
            return f"built-in SYNTHETIC data ({rows:,} rows, seed {seed}{difficulty})"
        return self.path

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataSource:
        keys = ("path", "synthetic_rows", "synthetic_seed", "synthetic_difficulty")
        return cls(**{k: d[k] for k in keys if k in d})


def load_source(source: DataSource, *, expect_sha256: str | None = None) -> pd.DataFrame:
    """Load the frame a source describes; ``expect_sha256`` guards against a changed file."""
    # Imported here: settings hold a DataSource, and option parsing must not pay for pandas.
    import pandas as pd

    from poptune.data._load import LoadReport, load_tracks
    from poptune.data._synthetic import synthetic_tracks

    if source.synthetic:
        frame = synthetic_tracks(
            source.synthetic_rows, source.synthetic_seed, difficulty=source.synthetic_difficulty
        )
        digest = hashlib.sha256(pd.util.hash_pandas_object(frame).to_numpy().tobytes()).hexdigest()
        frame.attrs["load_report"] = LoadReport(
            source=source.describe(),
            sha256=digest,
            rows_raw=len(frame),
            rows_used=len(frame),
            synthetic=True,
        )
    else:
        frame = load_tracks(Path(source.path))
    actual = frame.attrs["load_report"].sha256
    if expect_sha256 and actual != expect_sha256:
        raise DataError(
            f"{source.describe()}: its sha256 is {actual[:12]}…, but the experiment was searched "
            f"on {expect_sha256[:12]}…; pass --data with the original file"
        )
    return frame
