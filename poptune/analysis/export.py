"""best_config.json: the winning hyperparameters plus everything needed to reproduce them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from poptune.analysis.results import TrialRecord
from poptune.analysis.retrain import Retrained
from poptune.errors import ExperimentError, UsageError
from poptune.files import package_versions, write_json_atomic, write_text_atomic
from poptune.layout import BEST_CONFIG_FILE
from poptune.metric import METRIC, MODE
from poptune.storage.location import ExperimentLocation


def best_config_document(
    best: TrialRecord,
    search_meta: dict[str, Any],
    retrained: Retrained | None = None,
    final: Retrained | None = None,
) -> dict[str, Any]:
    """Flat config keys at the top (ready for `ModelConfig.from_dict` once `reproduce` is
    popped), and under ``reproduce`` the epochs, seed, data fingerprint and versions.

    Before analysis (``retrained`` None) the epochs are the trial's best epoch; after it, the
    finalists' horizon, trained keeping each seed's best validation epoch, with those seeds,
    and under ``final_model`` how the bundled model was trained (``final``:
    poptune/analysis/final_model.py)."""
    settings = search_meta["settings"]
    training: dict[str, Any] = {"epochs": best.best_epoch, "seed": settings["seed"]}
    if retrained is not None:
        training = {
            "epochs": retrained.epochs,
            "keep_best_epoch": True,
            "seeds": list(retrained.seeds),
            "best_epochs": list(retrained.best_epochs),
            "seed": settings["seed"],
        }
    if final is not None:
        training["final_model"] = {
            "schedule": final.config.schedule,
            "epochs": final.epochs,
            "keep_best_epoch": False,
            "seeds": list(final.seeds),
        }
    return {
        **best.config.to_dict(),
        "reproduce": {
            **training,
            "metric": METRIC,
            "mode": MODE,
            METRIC: best.best_val_mse,
            "trial_id": best.trial_id,
            "data": search_meta["data"],
            "data_source": settings["data"],
            "search": {k: settings[k] for k in ("num_samples", "max_epochs", "scheduler", "name")},
            "versions": package_versions(),
        },
    }


def write_best_config(
    exp_dir: str | Path,
    best: TrialRecord,
    search_meta: dict[str, Any],
    *,
    retrained: Retrained | None = None,
    final: Retrained | None = None,
) -> Path:
    document = best_config_document(best, search_meta, retrained, final)
    return write_json_atomic(Path(exp_dir) / BEST_CONFIG_FILE, document)


def export_best_config(exp_dir: str | Path, out: str | Path | None) -> str:
    """Return the best config as JSON text, or write it to ``out`` (YAML for .yaml/.yml).

    ``exp_dir`` is an experiment folder or its URI (s3://bucket/runs/name)."""
    document = _best_config(exp_dir)
    if out is None:
        return json.dumps(document, indent=2)
    out = Path(out)
    if out.suffix.lower() in (".yaml", ".yml"):
        write_text_atomic(out, yaml.safe_dump(document, sort_keys=False))
    elif out.suffix.lower() == ".json":
        write_json_atomic(out, document)
    else:
        raise UsageError(f"--out {out}: use a .json, .yaml or .yml file name")
    return str(out)


def _best_config(exp_dir: str | Path) -> dict[str, Any]:
    location = ExperimentLocation.of(exp_dir)
    try:
        return location.read_json(BEST_CONFIG_FILE)
    except FileNotFoundError:
        raise ExperimentError(
            f"{location.shown(BEST_CONFIG_FILE)}: not found; run `poptune search` (or "
            f"`poptune analyze`) on {location.shown()} first"
        ) from None
