"""`prepare`: one row per track, an 80/10/10 split disjoint by track_id, a scaler fitted on train.

The frames here carry each track's identity in its features (`duration_ms` = 1000 × (index + 1)),
so the tests can tell from the scaled arrays which track landed in which split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poptune.data import FEATURES, ID, TARGET, Prepared, load_tracks, prepare
from poptune.data._prepare import MIN_ROWS
from poptune.errors import DataError, UsageError

DURATION = FEATURES.index("duration_ms")


def tracks_frame(
    n_tracks: int, copies: list[int] | None = None, *, seed: int = 0, skew: bool = True
) -> pd.DataFrame:
    """``n_tracks`` tracks, track k listed ``copies[k]`` times with identical features."""
    rng = np.random.default_rng(seed)
    copies = copies or [1] * n_tracks
    features = rng.random((n_tracks, len(FEATURES)))
    if skew:  # a long tail, so the median of a subset differs from the median of all rows
        features[:, 0] = features[:, 0] ** 4 * 10
    features[:, DURATION] = 1000.0 * (np.arange(n_tracks) + 1)
    rows = []
    for k in range(n_tracks):
        for c in range(copies[k]):
            row = {"genre": f"g{c}", ID: f"id{k}", TARGET: float(k % 101)}
            rows.append({**row, **dict(zip(FEATURES, features[k], strict=True))})
    return pd.DataFrame(rows)


def split_tracks(prepared: Prepared) -> dict[str, np.ndarray]:
    """Track index of every row of each split, read back through the fitted scaler."""
    out = {}
    for part in ("train", "val", "test"):
        x = prepared.scaler.inverse_transform(getattr(prepared, f"x_{part}").astype(np.float64))
        out[part] = np.rint(x[:, DURATION] / 1000.0).astype(int) - 1
    return out


# ----------------------------------------------------------------------------- dedupe


def test_dedupe_keeps_one_row_per_track_and_counts_the_rest():
    copies = [1, 3, 2, 1, 4] * 10  # 50 tracks, 110 rows
    prepared = prepare(tracks_frame(50, copies), seed=0)
    info = prepared.info
    assert info.rows_used == 50
    assert info.duplicates_dropped == 60
    assert info.train + info.val + info.test == 50
    assert info.dedupe == "track_id"


def test_dedupe_none_keeps_every_row_as_the_reference_did():
    copies = [1, 3, 2, 1, 4] * 10
    prepared = prepare(tracks_frame(50, copies), seed=0, dedupe="none")
    assert prepared.info.rows_used == 110 and prepared.info.duplicates_dropped == 0
    # ... and so the same track can sit in train and test: the leak the default avoids.
    parts = split_tracks(prepared)
    assert set(parts["train"]) & set(parts["test"])


def test_dedupe_keeps_the_first_row_of_a_track():
    frame = tracks_frame(30, [2] * 30)
    frame.loc[1::2, TARGET] = 100.0  # second listing of each track: another popularity
    prepared = prepare(frame, seed=0)
    assert (np.concatenate([prepared.y_train, prepared.y_val, prepared.y_test]) != 100).all()


def test_rows_with_a_blank_track_id_are_all_kept_not_merged():
    frame = tracks_frame(40)
    frame.loc[:9, ID] = ""
    assert prepare(frame, seed=0).info.rows_used == 40


def test_dedupe_without_a_track_id_column_says_what_to_do():
    frame = tracks_frame(40).drop(columns=[ID])
    with pytest.raises(DataError, match="--dedupe none"):
        prepare(frame, seed=0)
    assert prepare(frame, seed=0, dedupe="none").info.rows_used == 40


def test_unknown_dedupe_is_a_usage_error():
    with pytest.raises(UsageError, match="dedupe must be one of track_id, none, but got 'genre'"):
        prepare(tracks_frame(40), seed=0, dedupe="genre")


# ----------------------------------------------------------------------------- split and scaler


def test_split_is_disjoint_by_track_and_covers_every_track():
    prepared = prepare(tracks_frame(500, [1, 2, 3, 1] * 125), seed=4)
    parts = split_tracks(prepared)
    train, val, test = (set(parts[p]) for p in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(500))
    assert sorted(int(i[2:]) for i in prepared.test_ids) == sorted(parts["test"])


def test_split_sizes_are_80_10_10():
    info = prepare(tracks_frame(1234), seed=0).info
    assert (info.train, info.val, info.test) == (988, 123, 123)


def test_scaler_is_fitted_on_the_training_rows_only():
    frame = tracks_frame(400)
    prepared = prepare(frame, seed=1)
    train = split_tracks(prepared)["train"]
    x = frame[list(FEATURES)].to_numpy()
    q1, median, q3 = np.percentile(x[train], [25, 50, 75], axis=0)
    np.testing.assert_allclose(prepared.scaler.center_, median)
    np.testing.assert_allclose(prepared.scaler.scale_, q3 - q1)
    # The skewed column makes "fitted on all rows" a different, detectable answer.
    assert not np.isclose(prepared.scaler.center_[0], np.median(x[:, 0]))
    # The training split is centred by construction; validation is scaled with train's numbers.
    np.testing.assert_allclose(np.median(prepared.x_train, axis=0), 0.0, atol=1e-5)


def test_arrays_are_float32_and_targets_line_up_with_features():
    frame = tracks_frame(300)
    prepared = prepare(frame, seed=2)
    for part, idx in split_tracks(prepared).items():
        assert getattr(prepared, f"x_{part}").dtype == np.float32
        y = getattr(prepared, f"y_{part}")
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, (idx % 101).astype(np.float32))


def test_prepare_is_deterministic_for_a_seed_and_the_seed_matters():
    frame = tracks_frame(200, [1, 2] * 100)
    a, b, c = prepare(frame, seed=7), prepare(frame, seed=7), prepare(frame, seed=8)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert set(split_tracks(a)["test"]) != set(split_tracks(c)["test"])


# ----------------------------------------------------------------------------- too little to use


def test_too_few_rows_to_split_names_the_minimum():
    with pytest.raises(DataError, match=f"only {MIN_ROWS - 1} usable row.*at least {MIN_ROWS}"):
        prepare(tracks_frame(MIN_ROWS - 1), seed=0)
    assert prepare(tracks_frame(MIN_ROWS), seed=0).info.val == 2  # the smallest that works


def test_too_few_tracks_after_dedupe_counts_tracks_not_rows():
    with pytest.raises(DataError, match="only 10 usable row"):
        prepare(tracks_frame(10, [5] * 10), seed=0)


def test_all_identical_features_are_refused_with_the_reason(tmp_path):
    frame = tracks_frame(100)
    for col in FEATURES:
        frame[col] = frame[col].iloc[0]
    with pytest.raises(DataError, match="every audio feature has the same value"):
        prepare(frame, seed=0)
    # One constant column is fine: the others still carry signal.
    frame = tracks_frame(100)
    frame["tempo"] = 120.0
    assert np.isfinite(prepare(frame, seed=0).x_train).all()


def test_counts_from_loading_travel_into_the_split_info(tmp_path):
    frame = tracks_frame(60, [1, 2] * 30, skew=False).astype({"energy": object})
    frame.loc[0, "energy"] = ""
    frame["time_signature"] = "4/4"
    frame.loc[[5, 6, 7], "time_signature"] = "4-Apr"
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    info = prepare(load_tracks(path), seed=0).info
    assert info.source == str(path) and info.rows_raw == 90
    assert info.dropped == {"blank or non-numeric value": 1}
    assert info.fixed == {"time_signature 'N-Apr' -> 'N/4'": 3}
    assert info.rows_used == 59 and info.duplicates_dropped == 30


# ----------------------------------------------------------------------------- properties


@st.composite
def valid_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(MIN_ROWS, 160))
    copies = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    return tracks_frame(n, copies, seed=draw(st.integers(0, 2**16)), skew=draw(st.booleans()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=valid_frames(), seed=st.integers(0, 2**31 - 1))
def test_property_splits_partition_the_tracks_80_10_10(frame, seed):
    prepared = prepare(frame, seed=seed)
    parts = split_tracks(prepared)
    n = frame[ID].nunique()
    all_rows = np.concatenate([parts["train"], parts["val"], parts["test"]])
    # Every kept track exactly once: disjoint and covering.
    assert sorted(all_rows) == list(range(n))
    n_hold = max(1, round(n * 0.1))
    assert len(parts["val"]) == len(parts["test"]) == n_hold
    assert abs(len(parts["train"]) - 0.8 * n) <= 1.5
    # The scaler's centre is the training rows' median, whatever the rest look like.
    x = frame.drop_duplicates(ID)[list(FEATURES)].to_numpy()
    np.testing.assert_allclose(
        prepared.scaler.center_, np.median(x[parts["train"]], axis=0), rtol=1e-12
    )


@settings(max_examples=15, deadline=None)
@given(frame=valid_frames(), seed=st.integers(0, 2**31 - 1))
def test_property_prepare_is_a_function_of_frame_and_seed(frame, seed):
    a, b = prepare(frame, seed=seed), prepare(frame.copy(), seed=seed)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "test_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
