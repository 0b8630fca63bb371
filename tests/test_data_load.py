"""`load_tracks`: real-format files read right, every clean-up counted, bad files refused.

The last test runs `poptune run` on a Kaggle-format file through the session Ray cluster and
checks that the counts planted in the file come out in `metrics.json`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from poptune.data import COLUMNS, FEATURES, TARGET, load_tracks, synthetic_tracks
from poptune.errors import DataError
from tests.quirks import AWKWARD_NAMES, KaggleFile, write_frame, write_kaggle_csv

FIXED_TS = "time_signature 'N-Apr' -> 'N/4'"


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> KaggleFile:
    return write_kaggle_csv(
        tmp_path_factory.mktemp("kaggle") / "SpotifyFeatures.csv", 2000, seed=3, broken_values=True
    )


@pytest.fixture
def tracks() -> pd.DataFrame:
    """60 distinct tracks, no duplicates: every later change to it is the only thing to count."""
    frame = synthetic_tracks(200, seed=5).drop_duplicates("track_id", ignore_index=True)
    return frame.head(60).copy()


def _report(frame: pd.DataFrame):
    return frame.attrs["load_report"]


# ----------------------------------------------------------------------------- the Kaggle file


def test_kaggle_quirks_are_read_and_every_clean_up_counted(kaggle):
    frame = load_tracks(kaggle.path)
    report = _report(frame)
    assert report.rows_raw == kaggle.rows_raw
    assert report.dropped == {
        "truncated last line": 1,
        # blank cells and text in tempo: both are "no number here"
        "blank or non-numeric value": kaggle.blank_feature + kaggle.non_numeric,
        "infinite value": kaggle.infinite,
        "value out of range": kaggle.out_of_range,
        "exact duplicate row": kaggle.exact_duplicates,
    }
    assert report.fixed == {FIXED_TS: kaggle.mangled_time_signature}
    assert report.rows_used == len(frame) == kaggle.rows_loaded
    # Exactly the planted rows went, and the survivors kept their order.
    assert frame["track_id"].tolist() == kaggle.kept_ids
    assert report.sha256 == hashlib.sha256(kaggle.path.read_bytes()).hexdigest()


def test_kaggle_values_survive_parsing(kaggle):
    frame = load_tracks(kaggle.path)
    assert list(frame.columns) == list(COLUMNS)  # the BOM is not part of "genre"
    for col in (*FEATURES, TARGET):
        assert frame[col].dtype == np.float64
        assert np.isfinite(frame[col]).all()
    assert frame["instrumentalness"].iloc[1] == 7.25e-06  # "7.25E-06" as Excel writes it
    # Quoted commas and doubled quotes come back as the exact names, not split into columns.
    names = frame["track_name"]
    assert set(AWKWARD_NAMES) <= set(names)
    assert (names.isin(AWKWARD_NAMES)).sum() == kaggle.awkward_names
    assert not frame["time_signature"].str.endswith("-Apr").any()
    assert set(frame["time_signature"]) <= {"4/4", "3/4", "5/4", "1/4", "0/4"}
    # A blank in a column that is not modelled is not a reason to lose the track.
    assert (frame["key"] == "").sum() + (frame["artist_name"] == "").sum() == kaggle.blank_other


# ----------------------------------------------------------------------------- clean-ups, counted


def test_missing_and_non_finite_features_are_dropped_and_counted(tmp_path, tracks):
    tracks = tracks.astype({c: object for c in FEATURES})
    tracks.loc[2, "energy"] = ""
    tracks.loc[4, "tempo"] = "  "
    tracks.loc[6, "valence"] = "NA"  # not a number to poptune: the row goes
    tracks.loc[8, "loudness"] = "nan"
    tracks.loc[10, "speechiness"] = "inf"
    tracks.loc[12, "liveness"] = "-inf"
    tracks.loc[14, "tempo"] = "1e999"  # overflows to inf
    frame = load_tracks(write_frame(tmp_path / "t.csv", tracks))
    report = _report(frame)
    assert report.dropped == {"blank or non-numeric value": 4, "infinite value": 3}
    assert report.rows_raw == 60 and report.rows_used == len(frame) == 53
    assert not frame[list(FEATURES)].isna().any().any()
    assert set(tracks["track_id"]) - set(frame["track_id"]) == set(
        tracks.loc[[2, 4, 6, 8, 10, 12, 14], "track_id"]
    )


def test_values_outside_their_documented_range_are_dropped(tmp_path, tracks):
    tracks.loc[1, "popularity"] = 101
    tracks.loc[3, "popularity"] = -1
    tracks.loc[5, "duration_ms"] = -5
    tracks.loc[7, "duration_ms"] = 0
    tracks.loc[9, "acousticness"] = 1.5
    tracks.loc[11, "loudness"] = 11.0
    # Edges of the ranges are valid values, not errors.
    tracks.loc[13, "popularity"] = 100
    tracks.loc[15, "popularity"] = 0
    tracks.loc[17, "loudness"] = -60.0
    frame = load_tracks(write_frame(tmp_path / "t.csv", tracks))
    assert _report(frame).dropped == {"value out of range": 6}
    assert len(frame) == 54
    assert frame["popularity"].between(0, 100).all()


def test_a_row_with_an_unquoted_comma_is_dropped_as_malformed(tmp_path, tracks):
    text = tracks.to_csv(index=False).splitlines()
    cells = text[3].split(",")
    cells[2] = "Hello, World"  # an unquoted comma: one field too many
    text[3] = ",".join(cells)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(text) + "\n")
    frame = load_tracks(path)
    assert _report(frame).dropped == {"malformed line": 1}
    assert _report(frame).rows_raw == 60 and len(frame) == 59
    assert tracks.loc[2, "track_id"] not in set(frame["track_id"])


def test_exact_duplicate_lines_are_dropped_but_genre_copies_are_kept(tmp_path, tracks):
    copy = tracks.iloc[[0]].assign(genre="Opera")  # same track, another genre: not a duplicate
    doubled = pd.concat([tracks, tracks.iloc[[1, 2, 3]], copy], ignore_index=True)
    frame = load_tracks(write_frame(tmp_path / "t.csv", doubled))
    assert _report(frame).dropped == {"exact duplicate row": 3}
    assert len(frame) == 61
    assert (frame["track_id"] == tracks.loc[0, "track_id"]).sum() == 2


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.95])
def test_a_last_line_cut_anywhere_is_dropped(tmp_path, tracks, cut):
    tracks.loc[59, "track_name"] = 'A "quoted", long name'
    text = tracks.to_csv(index=False)
    last_start = text.rstrip("\n").rfind("\n") + 1
    cut_at = last_start + int((len(text) - 1 - last_start) * cut)
    path = tmp_path / "t.csv"
    path.write_text(text[:cut_at])
    frame = load_tracks(path)
    assert _report(frame).dropped == {"truncated last line": 1}
    assert len(frame) == 59 and _report(frame).rows_raw == 60


def test_a_last_line_cut_inside_a_quoted_last_field_is_dropped(tmp_path, tracks):
    """All fields present but the last one's quote never closes: still a cut line."""
    text = tracks.assign(notes='she said, "encore"').to_csv(index=False)
    path = tmp_path / "t.csv"
    path.write_text(text[: text.rstrip("\n").rfind("encore")])
    frame = load_tracks(path)
    assert _report(frame).dropped == {"truncated last line": 1}
    assert len(frame) == 59 and (frame["notes"] == 'she said, "encore"').all()


def test_a_complete_last_line_without_newline_is_kept(tmp_path, tracks):
    path = tmp_path / "t.csv"
    path.write_text(tracks.to_csv(index=False).rstrip("\n"))
    frame = load_tracks(path)
    assert len(frame) == 60 and _report(frame).dropped == {}


# ----------------------------------------------------------------------------- encodings, formats


def test_bom_and_windows_line_endings_read_like_the_plain_file(tmp_path, tracks):
    plain = tracks.to_csv(index=False)
    (tmp_path / "plain.csv").write_text(plain)
    (tmp_path / "win.csv").write_bytes(b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode())
    a, b = load_tracks(tmp_path / "plain.csv"), load_tracks(tmp_path / "win.csv")
    pd.testing.assert_frame_equal(a, b)
    assert list(b.columns) == list(COLUMNS)


def test_gzip_is_read_whatever_the_file_is_called(tmp_path, tracks):
    plain = tracks.to_csv(index=False).encode()
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(plain))
    (tmp_path / "misnamed.csv").write_bytes(gzip.compress(plain))
    (tmp_path / "t.csv").write_bytes(plain)
    expected = load_tracks(tmp_path / "t.csv")
    for name in ("t.csv.gz", "misnamed.csv"):
        pd.testing.assert_frame_equal(load_tracks(tmp_path / name), expected)


def test_semicolons_with_decimal_commas_read_like_the_plain_file(tmp_path, tracks):
    write_frame(tmp_path / "eu.csv", tracks, sep=";", decimal=",")
    write_frame(tmp_path / "plain.csv", tracks)
    pd.testing.assert_frame_equal(
        load_tracks(tmp_path / "eu.csv")[list(FEATURES)],
        load_tracks(tmp_path / "plain.csv")[list(FEATURES)],
    )


def test_latin1_track_names_do_not_reject_the_file(tmp_path, tracks):
    tracks.loc[0, "track_name"] = "Café Müller"
    path = tmp_path / "t.csv"
    path.write_bytes(tracks.to_csv(index=False).encode("latin-1"))
    frame = load_tracks(path)
    assert frame.loc[0, "track_name"] == "Café Müller" and len(frame) == 60


def test_extra_columns_are_kept_and_ignored(tmp_path, tracks):
    frame = load_tracks(write_frame(tmp_path / "t.csv", tracks.assign(my_note="x", score=3)))
    assert len(frame) == 60 and {"my_note", "score"} <= set(frame.columns)


def test_features_only_file_loads_when_the_target_is_not_required(tmp_path, tracks):
    path = write_frame(tmp_path / "t.csv", tracks.drop(columns=[TARGET]))
    assert len(load_tracks(path, require_target=False)) == 60
    with pytest.raises(DataError, match="missing column"):
        load_tracks(path)


# ----------------------------------------------------------------------------- refused files


def test_a_mostly_text_column_is_an_error_that_names_column_and_line(tmp_path, tracks):
    tracks = tracks.astype({"tempo": object})
    tracks.loc[4:, "tempo"] = "allegro"  # 56 of 60: the columns are shifted, not a few bad rows
    path = write_frame(tmp_path / "t.csv", tracks)
    with pytest.raises(DataError) as info:
        load_tracks(path)
    message = str(info.value)
    assert str(path) in message and "'tempo' is not numeric" in message
    # The header is line 1, so row 4 is line 6.
    assert "line 6: 'allegro'; 56 of 60 values are not numbers" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b"genre,track_id\n", "missing column(s) acousticness, danceability"),
        (b"\x00\x01\x02binary\x00" * 50, "is a binary file"),
        (b"\x1f\x8b\x08\x00broken", "is a damaged gzip file"),
    ],
)
def test_files_that_are_not_tracks_raise_data_error_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load_tracks(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_path_and_directory_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_tracks(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        load_tracks(tmp_path)


# ----------------------------------------------------------------------------- through Ray


def _no_nan(text: str) -> dict:
    def refuse(name: str) -> float:
        raise AssertionError(f"metrics.json holds {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.ray
def test_poptune_run_on_a_kaggle_file_reports_the_planted_counts(
    ray_cluster, ray_env, tmp_path, kaggle
):
    args = [sys.executable, "-m", "poptune", "run", "--data", str(kaggle.path),
            "--address", ray_cluster.address, "--num-samples", "3", "--max-epochs", "2",
            "--seeds", "1", "--storage", str(tmp_path / "runs"), "--name", "kaggle"]  # fmt: skip
    proc = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, **ray_env}, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # The clean-ups are said on the terminal, the fixed time signatures included.
    assert f"{kaggle.mangled_time_signature:,} fixed (" in proc.stdout
    assert f"{kaggle.exact_duplicates:,} dropped (exact duplicate row)" in proc.stdout

    # The experiment keeps the full account of the data, repairs included.
    searched = json.loads((tmp_path / "runs/kaggle/poptune_search.json").read_text())["data"]
    assert searched["fixed"] == {FIXED_TS: kaggle.mangled_time_signature}
    assert searched["dropped"]["blank or non-numeric value"] == (
        kaggle.blank_feature + kaggle.non_numeric
    )

    metrics = _no_nan((tmp_path / "runs/kaggle/analysis/metrics.json").read_text())
    data = metrics["data"]
    assert data["source"] == str(kaggle.path) and data["synthetic"] is False
    assert data["rows_raw"] == kaggle.rows_raw
    assert data["dropped"] == {
        "truncated last line": 1,
        "blank or non-numeric value": kaggle.blank_feature + kaggle.non_numeric,
        "infinite value": kaggle.infinite,
        "value out of range": kaggle.out_of_range,
        "exact duplicate row": kaggle.exact_duplicates,
    }
    assert data["fixed"] == {FIXED_TS: kaggle.mangled_time_signature}
    assert data["rows_used"] == kaggle.distinct_ids  # one row per track
    assert data["duplicates_dropped"] == kaggle.rows_loaded - kaggle.distinct_ids
    assert data["train"] + data["val"] + data["test"] == kaggle.distinct_ids
    assert data["val"] == data["test"] == round(kaggle.distinct_ids * 0.1)
    assert metrics["search"]["trials"] == 3
    assert all(math.isfinite(v) for v in metrics["test"]["rmse_ci95"])
    assert 0 < metrics["test"]["mae"] < metrics["test"]["rmse"] < 40
