"""The model bundle `analysis/model/`: everything needed to predict, nothing that unpickles.

- ``model.safetensors``: the weights (tensors only; loading runs no code) of every member of
  the final model, a seed ensemble (``members.<i>.…``), and with ``features: quantile`` the
  input map's knots;
- ``bundle.json``: the config, the number of members, the feature order, the fitted
  RobustScaler (``center_``, ``scale_``) and the target scale as plain numbers, the data
  fingerprint and package versions.

Predicting needs no training data: features → ``(x − center_) / scale_`` → each member's
network → mean → ``· std + mean`` → clipped to 0–100, exactly the arithmetic of ``prepare`` and
``predict``. Bundles of format 1 (one model, no ``members``) still load.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from poptune.data import FEATURES, ID, Prepared, load_tracks
from poptune.errors import UsageError
from poptune.files import (
    package_versions,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from poptune.metric import clip_popularity
from poptune.trainables.config import ModelConfig
from poptune.trainables.loop import TargetScale, predict
from poptune.trainables.models import build_model
from poptune.trainables.seed_ensemble import SeedEnsemble

FORMAT = "poptune-model"
FORMAT_VERSION = 2
WEIGHTS_FILE = "model.safetensors"
BUNDLE_FILE = "bundle.json"
# The data's provenance a bundle keeps (DataInfo's own names; ``seed`` is written ``split_seed``).
_PROVENANCE = ("source", "sha256", "synthetic", "rows_used", "dedupe", "seed")


@dataclass(frozen=True, eq=False)
class Bundle:
    config: ModelConfig
    model: nn.Module
    features: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    target_scale: TargetScale
    meta: dict[str, Any]

    def scale_features(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame[list(self.features)].to_numpy(dtype=np.float64)
        return ((x - self.center) / self.scale).astype(np.float32)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Popularity predictions for the rows of a tracks frame, clipped to 0–100."""
        return clip_popularity(predict(self.model, self.scale_features(frame), self.target_scale))


def write_bundle(
    out_dir: str | Path,
    model: SeedEnsemble,
    target_scale: TargetScale,
    config: ModelConfig,
    prepared: Prepared,
    *,
    training: dict[str, Any],
    scores: dict[str, float],
) -> Path:
    """Write the bundle into ``out_dir``, replacing a previous one only once it is complete."""
    out_dir = Path(out_dir)
    scaler = prepared.scaler
    provenance = {k: v for k, v in prepared.info.to_dict().items() if k in _PROVENANCE}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "members": len(model.members),
        "features": list(FEATURES),
        "target": "popularity",
        "scaler": {
            "type": "RobustScaler",
            "center_": [float(v) for v in scaler.center_],
            "scale_": [float(v) for v in scaler.scale_],
        },
        "target_scale": {"mean": target_scale.mean, "std": target_scale.std},
        "clip": [0.0, 100.0],
        "training": {**training, **scores},
        "data": {("split_seed" if k == "seed" else k): v for k, v in provenance.items()},
        "versions": package_versions(),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would follow the bundle into place
    try:
        write_bytes_atomic(staging / WEIGHTS_FILE, save_safetensors(state))
        write_json_atomic(staging / BUNDLE_FILE, doc)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def load_bundle(model_dir: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle`; a bad one raises :class:`UsageError`."""
    model_dir = Path(model_dir)
    doc_path, weights_path = model_dir / BUNDLE_FILE, model_dir / WEIGHTS_FILE
    if not doc_path.is_file() or not weights_path.is_file():
        raise UsageError(
            f"{model_dir}: not a poptune model bundle (needs {BUNDLE_FILE} and {WEIGHTS_FILE}); "
            "pass EXP_DIR/analysis/model, written by `poptune analyze`"
        )
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{doc_path}: unreadable ({exc}); rerun `poptune analyze`") from exc
    if doc.get("format") != FORMAT or doc.get("format_version", 0) > FORMAT_VERSION:
        raise UsageError(
            f"{doc_path}: format {doc.get('format')!r} v{doc.get('format_version')} is not one "
            f"this poptune reads ({FORMAT} v{FORMAT_VERSION}); upgrade poptune"
        )
    config = ModelConfig.from_dict(doc["config"])
    members = doc.get("members")  # absent in format 1: one plain model
    if members is None:
        model: nn.Module = build_model(config)
    elif isinstance(members, int) and members >= 1:
        model = SeedEnsemble([build_model(config) for _ in range(members)])
    else:
        raise UsageError(f"{doc_path}: members must be a positive integer, but got {members!r}")
    try:
        state = load_safetensors(weights_path.read_bytes())
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise UsageError(
            f"{weights_path}: weights do not load into {config.family} ({exc}); "
            "the bundle is damaged, rerun `poptune analyze`"
        ) from exc
    model.eval()
    center = np.asarray(doc["scaler"]["center_"], dtype=np.float64)
    scale = np.asarray(doc["scaler"]["scale_"], dtype=np.float64)
    features = tuple(doc["features"])
    if not (len(features) == len(center) == len(scale)):
        raise UsageError(f"{doc_path}: features and scaler disagree in length; bundle damaged")
    return Bundle(
        config=config,
        model=model,
        features=features,
        center=center,
        scale=scale,
        target_scale=TargetScale(**doc["target_scale"]),
        meta=doc,
    )


def predictions_frame(bundle: Bundle, frame: pd.DataFrame) -> pd.DataFrame:
    """``track_id, popularity_pred`` for each row (the row number where there is no track_id)."""
    ids = frame[ID].to_numpy() if ID in frame.columns else np.arange(len(frame))
    return pd.DataFrame({ID: ids, "popularity_pred": bundle.predict(frame)})


def predict_file(model_dir: str | Path, data: str | Path, out: str | Path) -> tuple[int, str]:
    """`poptune predict`: validate ``data`` like any tracks CSV, write one prediction per row.

    Returns the number of rows written and the loader's summary of what it dropped.
    """
    bundle = load_bundle(model_dir)
    frame = load_tracks(data, require_target=False)
    predictions = predictions_frame(bundle, frame)
    write_text_atomic(out, predictions.to_csv(index=False))
    return len(predictions), frame.attrs["load_report"].summary()


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by the complete ``staging`` dir; the old bundle goes only after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{staging.name}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
