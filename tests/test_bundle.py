"""The model bundle and `poptune predict`: small in-process fits, no Ray."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from poptune.cli import main
from poptune.data import FEATURES, ID, TARGET
from poptune.errors import UsageError
from poptune.metric import clip_popularity
from poptune.trainables import ModelConfig, fit, predict
from poptune.trainables.bundle import (
    BUNDLE_FILE,
    WEIGHTS_FILE,
    load_bundle,
    predict_file,
    predictions_frame,
    write_bundle,
)
from poptune.trainables.seed_ensemble import SeedEnsemble

BATCHNORM = ModelConfig(
    family="MLP2LayerBatchNorm", width_1=16, width_2=8, lr=3e-3, batch_size=64, weight_decay=1e-4
)
DROPOUT = ModelConfig(
    family="MLP3LayerDropout", width_1=16, width_2=8, width_3=4, dropout=0.3, lr=3e-3,
    batch_size=64, features="quantile", schedule="cosine",
)  # fmt: skip


class Trained:
    """A two-seed ensemble, as `poptune analyze` bundles the winner."""

    def __init__(self, config: ModelConfig, prepared, epochs: int) -> None:
        self.fits = [fit(config, prepared, epochs=epochs, seed=s) for s in (0, 1)]
        self.model = SeedEnsemble([f.model for f in self.fits])
        self.target_scale = self.fits[0].target_scale


def _write(out, trained: Trained, config: ModelConfig, prepared, scores=None):
    return write_bundle(out, trained.model, trained.target_scale, config, prepared,
                        training={"epochs": 2, "seeds": [0, 1]}, scores=scores or {})  # fmt: skip


def _test_rows(frame: pd.DataFrame, prepared) -> pd.DataFrame:
    """The raw rows of the test split, in the split's order (prepare dedupes by track_id)."""
    by_id = frame.drop_duplicates(ID).set_index(ID)
    return by_id.loc[list(prepared.test_ids)].reset_index()


@pytest.fixture(scope="module", params=[BATCHNORM, DROPOUT], ids=lambda c: c.family)
def trained(request, small_prepared, tmp_path_factory):
    result = Trained(request.param, small_prepared, epochs=2)
    out = tmp_path_factory.mktemp("bundle") / "model"
    _write(out, result, request.param, small_prepared, scores={"val_mse": 1.0})
    return request.param, result, out


@pytest.fixture(scope="module")
def one_bundle(small_prepared, tmp_path_factory):
    """One bundle for the CLI tests: each `poptune` subprocess costs seconds of imports."""
    result = Trained(BATCHNORM, small_prepared, epochs=2)
    out = tmp_path_factory.mktemp("cli_bundle") / "model"
    _write(out, result, BATCHNORM, small_prepared)
    return BATCHNORM, result, out


def test_bundle_predictions_equal_the_in_memory_model(trained, small_frame, small_prepared):
    config, result, out = trained
    bundle = load_bundle(out)
    expected = clip_popularity(predict(result.model, small_prepared.x_test, result.target_scale))
    rows = _test_rows(small_frame, small_prepared)
    # From raw features: the bundle's JSON scaler must reproduce prepare()'s scaling exactly.
    np.testing.assert_array_equal(bundle.scale_features(rows), small_prepared.x_test)
    np.testing.assert_array_equal(bundle.predict(rows), expected)
    assert bundle.config == config
    # The ensemble's prediction is the mean of its members' predictions.
    members = [predict(f.model, small_prepared.x_test, f.target_scale) for f in result.fits]
    np.testing.assert_allclose(expected, clip_popularity(np.mean(members, axis=0)), atol=1e-4)
    assert not np.allclose(members[0], members[1])  # two different seeds, really


def test_a_format_1_bundle_of_one_model_still_loads(one_bundle, small_prepared, tmp_path):
    from safetensors.torch import save as save_safetensors

    _, result, out = one_bundle
    single = result.fits[0]
    doc = json.loads((out / BUNDLE_FILE).read_text())
    doc.pop("members")
    doc["format_version"] = 1
    old = tmp_path / "old"
    old.mkdir()
    (old / BUNDLE_FILE).write_text(json.dumps(doc))
    (old / WEIGHTS_FILE).write_bytes(save_safetensors(single.model.state_dict()))
    bundle = load_bundle(old)
    expected = predict(single.model, small_prepared.x_test, single.target_scale)
    np.testing.assert_array_equal(
        predict(bundle.model, small_prepared.x_test, bundle.target_scale), expected
    )


def test_bundle_files_are_plain_data(trained, small_prepared):
    config, result, out = trained
    assert sorted(p.name for p in out.iterdir()) == sorted([BUNDLE_FILE, WEIGHTS_FILE])
    doc = json.loads((out / BUNDLE_FILE).read_text())
    assert doc["features"] == list(FEATURES)
    assert doc["config"] == config.to_dict()
    assert doc["members"] == 2 and doc["format_version"] == 2
    assert doc["scaler"]["center_"] == small_prepared.scaler.center_.tolist()
    assert doc["scaler"]["scale_"] == small_prepared.scaler.scale_.tolist()
    assert doc["target_scale"] == {"mean": result.target_scale.mean, "std": result.target_scale.std}
    assert doc["data"]["sha256"] == small_prepared.info.sha256
    assert {"torch", "numpy", "poptune"} <= set(doc["versions"])
    # safetensors: an 8-byte header length, then a JSON header naming each tensor; no pickle.
    raw = (out / WEIGHTS_FILE).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == set(result.model.state_dict())
    assert b"\x80\x04" not in raw[:2]  # not a pickle protocol header


def test_predict_cli_writes_ids_and_clipped_predictions(
    one_bundle, small_frame, small_prepared, cli, tmp_path
):
    _, result, out = one_bundle
    rows = _test_rows(small_frame, small_prepared).drop(columns=[TARGET])  # no target needed
    csv = tmp_path / "tracks.csv"
    text = rows.to_csv(index=False)
    csv.write_text(text + "x,y,z,broken-row\n")  # a row that is not a track: dropped, counted
    r = cli("predict", out, "--data", csv, "--out", tmp_path / "pred.csv")
    assert r.code == 0, r.err
    assert "1 dropped (blank or non-numeric value)" in r.out
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert list(pred.columns) == [ID, "popularity_pred"]
    assert list(pred[ID]) == list(rows[ID])
    expected = clip_popularity(predict(result.model, small_prepared.x_test, result.target_scale))
    # Not the same computation replayed: the command parses the CSV and runs in another process
    # with its own thread count, where MKL may split the matmul differently (a CI pass under
    # MKL_CBWR=COMPATIBLE moved 2 of 114 rows by one float32 step). So: equal to the float32
    # resolution of the standardised output, far below what a wrong scaler or member would do.
    resolution = 16 * np.finfo(np.float32).eps * result.target_scale.std
    np.testing.assert_allclose(
        pred["popularity_pred"].to_numpy(), expected, rtol=0, atol=resolution
    )


def test_predictions_are_clipped_to_the_popularity_scale(small_prepared, small_frame, tmp_path):
    result = Trained(BATCHNORM, small_prepared, epochs=1)
    with torch.no_grad():
        for f in result.fits:
            f.model[-1].bias += 1e4  # every output far above 100
    _write(tmp_path / "m", result, BATCHNORM, small_prepared)
    preds = predictions_frame(load_bundle(tmp_path / "m"), small_frame.head(50))
    assert (preds["popularity_pred"] == 100.0).all()


def test_rewriting_a_bundle_replaces_it_whole(one_bundle, small_prepared, tmp_path):
    config, result, _ = one_bundle
    target = tmp_path / "model"
    for _ in range(2):
        _write(target, result, config, small_prepared)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging dirs left


def test_a_bad_bundle_is_a_usage_error(tmp_path, one_bundle, capsys):
    with pytest.raises(UsageError, match="not a poptune model bundle"):
        load_bundle(tmp_path)
    _, _, out = one_bundle
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / BUNDLE_FILE).write_text((out / BUNDLE_FILE).read_text())
    (broken / WEIGHTS_FILE).write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match="weights do not load"):
        load_bundle(broken)
    # In-process main(): the same exit code and message as the console script, without the
    # seconds a subprocess spends importing torch.
    code = main(["predict", str(tmp_path / "nowhere"), "--data", "x.csv", "--out", "y.csv"])
    err = capsys.readouterr().err
    assert code == 2 and "not a poptune model bundle" in err and "Traceback" not in err


def test_predict_validates_the_input_like_load_tracks(one_bundle, tmp_path, capsys):
    _, _, out = one_bundle
    bad = tmp_path / "bad.csv"
    bad.write_text("track_id,energy\nabc,0.5\n")
    code = main(["predict", str(out), "--data", str(bad), "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "missing column" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_predict_file_without_track_ids_numbers_the_rows(one_bundle, small_frame, tmp_path):
    _, _, out = one_bundle
    csv = tmp_path / "noid.csv"
    small_frame.head(20).drop(columns=[ID, TARGET]).to_csv(csv, index=False)
    n, _ = predict_file(out, csv, tmp_path / "p.csv")
    assert n == 20
    assert list(pd.read_csv(tmp_path / "p.csv")[ID]) == list(range(20))
