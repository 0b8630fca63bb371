"""The quality benchmark's anchors: the tools a user would pick instead of poptune.

- LightGBM with its defaults;
- FLAML AutoML (LightGBM, XGBoost, random forest, extra trees) given poptune's whole wall as its
  ``time_budget``;
- TabM-D and RealMLP-TD, pytabkit's tuned defaults (one fit each). pytabkit's TD estimators have
  no time limit, so each runs its default fit to the end and its own wall is reported beside
  poptune's: where it is longer, the comparison favours the anchor.

Every anchor fits on the same train split and, where it selects anything (an epoch, a model),
on the same validation split as poptune; the test split is only scored. They come from the
``bench`` extra (``pip install -c constraints.txt -e '.[dev,bench]'``), never from what a user
installs; :func:`missing` names what is absent so that the benchmark can say so and go on.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass

import numpy as np

from poptune.data import Prepared
from poptune.metric import regression_scores

# anchor name -> the module it needs
NEEDS = {"LightGBM": "lightgbm", "FLAML": "flaml", "TabM-D": "pytabkit", "RealMLP-TD": "pytabkit"}


@dataclass(frozen=True)
class Anchor:
    """One anchor on one split: test RMSE, validation MSE (what it selected on) and its wall."""

    rmse: float
    val_mse: float
    wall_s: float


def missing() -> list[str]:
    """The anchors whose package is not installed."""
    return [name for name, module in NEEDS.items() if importlib.util.find_spec(module) is None]


def _scored(model: object, prepared: Prepared, started: float) -> Anchor:
    wall = time.perf_counter() - started
    test = np.asarray(model.predict(prepared.x_test), dtype=np.float64).reshape(-1)
    val = np.asarray(model.predict(prepared.x_val), dtype=np.float64).reshape(-1)
    return Anchor(
        rmse=regression_scores(prepared.y_test, test)["rmse"],
        val_mse=regression_scores(prepared.y_val, val)["mse"],
        wall_s=wall,
    )


def lightgbm_default(prepared: Prepared, seed: int) -> Anchor:
    import lightgbm

    started = time.perf_counter()
    model = lightgbm.LGBMRegressor(random_state=seed, verbose=-1)
    model.fit(prepared.x_train, prepared.y_train)
    return _scored(model, prepared, started)


def flaml_automl(prepared: Prepared, seed: int, time_budget: float) -> Anchor:
    from flaml import AutoML

    started = time.perf_counter()
    model = AutoML()
    model.fit(
        prepared.x_train,
        prepared.y_train,
        X_val=prepared.x_val,
        y_val=prepared.y_val,
        task="regression",
        metric="mse",
        estimator_list=["lgbm", "xgboost", "rf", "extra_tree"],
        time_budget=time_budget,
        n_jobs=os.cpu_count() or 1,
        seed=seed,
        verbose=0,
    )
    return _scored(model, prepared, started)


def _pytabkit(estimator: type, prepared: Prepared, seed: int) -> Anchor:
    started = time.perf_counter()
    model = estimator(device="cpu", random_state=seed, n_threads=os.cpu_count() or 1, verbosity=0)
    model.fit(prepared.x_train, prepared.y_train, X_val=prepared.x_val, y_val=prepared.y_val)
    return _scored(model, prepared, started)


def tabm_d(prepared: Prepared, seed: int) -> Anchor:
    from pytabkit import TabM_D_Regressor

    return _pytabkit(TabM_D_Regressor, prepared, seed)


def realmlp_td(prepared: Prepared, seed: int) -> Anchor:
    from pytabkit import RealMLP_TD_Regressor

    return _pytabkit(RealMLP_TD_Regressor, prepared, seed)


def run_anchors(prepared: Prepared, seed: int, wall_s: float) -> dict[str, Anchor]:
    """Every installed anchor on this split; FLAML gets ``wall_s`` (poptune's wall)."""
    absent = set(missing())
    runs = {
        "LightGBM": lambda: lightgbm_default(prepared, seed),
        "FLAML": lambda: flaml_automl(prepared, seed, wall_s),
        "RealMLP-TD": lambda: realmlp_td(prepared, seed),
        "TabM-D": lambda: tabm_d(prepared, seed),
    }
    return {name: fn() for name, fn in runs.items() if name not in absent}
