"""From a tracks frame to the float32 arrays every model trains on: dedupe, split, scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.preprocessing import RobustScaler

from poptune.data._schema import DEDUPE_CHOICES, FEATURES, ID, TARGET
from poptune.errors import DataError, UsageError

Dedupe = Literal["track_id", "none"]
SPLIT = (0.8, 0.1, 0.1)  # train / val / test, as in the reference study
MIN_ROWS = 20  # fewer cannot fill a validation and a test split with more than one row each


@dataclass(frozen=True)
class DataInfo:
    """Where the rows came from and how they were split: written next to every result."""

    source: str
    sha256: str
    synthetic: bool
    rows_raw: int
    rows_used: int
    duplicates_dropped: int
    train: int
    val: int
    test: int
    dedupe: str
    seed: int
    dropped: dict[str, int]
    fixed: dict[str, int] = field(default_factory=dict)  # values repaired while loading

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Prepared:
    """Scaled float32 features and float32 popularity per split, plus the train-fitted scaler."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scaler: RobustScaler
    info: DataInfo
    test_ids: np.ndarray


def prepare(frame: pd.DataFrame, *, seed: int, dedupe: Dedupe = "track_id") -> Prepared:
    """Dedupe by ``track_id`` (or not), split 80/10/10 with ``seed``, fit the scaler on train."""
    if dedupe not in DEDUPE_CHOICES:
        raise UsageError(f"dedupe must be one of {', '.join(DEDUPE_CHOICES)}, but got {dedupe!r}")
    report = frame.attrs.get("load_report")
    rows_in = len(frame)
    if dedupe == "track_id":
        frame = _one_row_per_track(frame)
    n = len(frame)
    if n < MIN_ROWS:
        raise DataError(
            f"{_source(frame)}: only {n} usable row(s) after cleaning; poptune needs at least "
            f"{MIN_ROWS} to split 80/10/10 into train, validation and test"
        )
    x = frame[list(FEATURES)].to_numpy(dtype=np.float64)
    if (x == x[0]).all():
        # Training would "work" and every model would predict the mean: say so instead.
        raise DataError(
            f"{_source(frame)}: every audio feature has the same value in all {n:,} rows, so "
            "there is nothing to learn popularity from; check that the feature columns hold "
            "each track's own values"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_val = n_test = max(1, round(n * SPLIT[2]))
    parts = np.split(order, [n - n_val - n_test, n - n_test])
    y = frame[TARGET].to_numpy(dtype=np.float32)
    scaler = RobustScaler().fit(x[parts[0]])
    x_train, x_val, x_test = (scaler.transform(x[p]).astype(np.float32) for p in parts)
    ids = frame[ID].to_numpy(dtype=str) if ID in frame.columns else np.arange(n).astype(str)
    info = DataInfo(
        source=report.source if report else "<in-memory frame>",
        sha256=report.sha256 if report else "",
        synthetic=bool(report.synthetic) if report else False,
        rows_raw=report.rows_raw if report else rows_in,
        rows_used=n,
        duplicates_dropped=rows_in - n,
        train=len(parts[0]),
        val=len(parts[1]),
        test=len(parts[2]),
        dedupe=dedupe,
        seed=seed,
        dropped=dict(report.dropped) if report else {},
        fixed=dict(report.fixed) if report else {},
    )
    return Prepared(
        x_train=x_train,
        y_train=y[parts[0]],
        x_val=x_val,
        y_val=y[parts[1]],
        x_test=x_test,
        y_test=y[parts[2]],
        scaler=scaler,
        info=info,
        test_ids=ids[parts[2]],
    )


def _one_row_per_track(frame: pd.DataFrame) -> pd.DataFrame:
    if ID not in frame.columns:
        raise DataError(
            f"{_source(frame)}: has no {ID} column to dedupe on; pass --dedupe none "
            "(the same track may then land in both train and test)"
        )
    # One row per track: the Kaggle file repeats a track once per genre with identical
    # features, so a row split would leak test tracks into training. Rows without an id are
    # kept, each its own track.
    blank = frame[ID].astype(str).str.strip() == ""
    return pd.concat([frame[~blank].drop_duplicates(ID), frame[blank]])


def _source(frame: pd.DataFrame) -> str:
    report = frame.attrs.get("load_report")
    return report.source if report else "data"
