"""The define-by-run space, driven by real Optuna trials: only the sampled family's keys, in the
documented ranges, and every sample a config the models accept."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from poptune.spaces import FAMILY_STARTS, define_space
from poptune.trainables import FAMILIES, REFERENCE, ModelConfig, build_model

# The ranges docs/design.md documents, written out rather than imported.
EXPECTED = {
    "width_1": IntDistribution(16, 512, log=True),
    "width_2": IntDistribution(8, 256, log=True),
    "width_3": IntDistribution(4, 128, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "lr": FloatDistribution(1e-4, 3e-2, log=True),
    "batch_size": CategoricalDistribution((64, 128, 256, 512, 1024, 2048)),
    "weight_decay": FloatDistribution(1e-8, 1e-2, log=True),
    "family": CategoricalDistribution(
        ("MLP1Layer", "MLP2Layer", "MLP3LayerDropout", "MLP2LayerBatchNorm")
    ),
    "features": CategoricalDistribution(("robust", "quantile")),
    "schedule": CategoricalDistribution(("constant", "cosine")),
}
KEYS = {
    "MLP1Layer": {"width_1"},
    "MLP2Layer": {"width_1", "width_2"},
    "MLP3LayerDropout": {"width_1", "width_2", "width_3", "dropout"},
    "MLP2LayerBatchNorm": {"width_1", "width_2"},
}
COMMON = {"family", "lr", "batch_size", "weight_decay", "features", "schedule"}


@pytest.fixture(scope="module")
def sampled() -> list[optuna.trial.FrozenTrial]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(80):
        trial = study.ask()
        assert define_space(trial) is None  # suggest_* only; nothing computed or returned
        study.tell(trial, 0.0)
    return study.trials


def test_every_family_is_reachable(sampled):
    assert {t.params["family"] for t in sampled} == set(FAMILIES) == set(KEYS)


def test_a_trial_suggests_only_its_familys_keys(sampled):
    for trial in sampled:
        assert set(trial.params) == COMMON | KEYS[trial.params["family"]], trial.params


def test_ranges_and_scales_are_the_documented_ones(sampled):
    seen = {}
    for trial in sampled:
        seen.update(trial.distributions)
    assert seen == EXPECTED


def test_every_sample_is_a_valid_config_and_model(sampled):
    for trial in sampled:
        config = ModelConfig.from_dict(trial.params)
        assert config.to_dict() == trial.params
        build_model(config)


def test_every_starting_point_is_a_point_of_the_space():
    """The search evaluates these first (the reference, then one config of each other family):
    each must be a point TPE could have sampled, with exactly its family's keys."""
    from poptune.driver.tune_config import starting_points

    points = starting_points(10**6)
    assert [p["family"] for p in points] == [
        REFERENCE.family,
        *(s["family"] for s in FAMILY_STARTS),
    ]
    for point in points:
        assert set(point) == COMMON | KEYS[point["family"]], point
        for key, value in point.items():
            dist = EXPECTED[key]
            if isinstance(dist, CategoricalDistribution):
                assert value in dist.choices, (key, value)
            else:
                assert dist.low <= value <= dist.high, (key, value)
    # The reference trains as the reference: its weight decay of 0 becomes the range's floor,
    # 1e-8, which changes no weight (lr 1e-3 × 1e-8 per step), and nothing else moves.
    reference = ModelConfig.from_dict(points[0])
    assert reference == dataclasses.replace(REFERENCE, weight_decay=EXPECTED["weight_decay"].low)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_tpe_can_drive_it():
    """The conditional space works with the sampler the search uses, not only random."""
    tpe = optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=5)
    study = optuna.create_study(sampler=tpe)
    for i in range(12):
        trial = study.ask()
        define_space(trial)
        study.tell(trial, float(i % 5))
    for trial in study.trials:
        assert set(trial.params) == COMMON | KEYS[trial.params["family"]]


def test_the_space_without_the_recipe_leaves_the_recipe_at_its_defaults():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(30):
        trial = study.ask()
        define_space(trial, recipe=False)
        assert not {"features", "schedule"} & set(trial.params)
        config = ModelConfig.from_dict(trial.params)
        assert (config.features, config.schedule) == ("robust", "constant")
        study.tell(trial, 0.0)
