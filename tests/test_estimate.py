"""The prediction maths of `poptune estimate`: ASHA's epochs, the cost model, the wall time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

from poptune.cluster.capacity import ClusterInfo, trial_slots
from poptune.driver.settings import SearchSettings
from poptune.estimate.clock import EpochTiming, SearchClock
from poptune.estimate.epoch_cost import EpochCostModel, sample_space, step_features
from poptune.estimate.simulation import (
    SlotCosts,
    asha_milestones,
    simulate_search,
)
from poptune.spaces import BATCH_SIZES, WIDTH_RANGES
from poptune.trainables import REFERENCE, ModelConfig


@pytest.mark.parametrize(("max_t", "grace"), [(4, 1), (12, 2), (9, 1), (27, 1), (10, 3), (3, 1)])
def test_milestones_are_rays_rungs_below_max_t(max_t, grace):
    scheduler = ASHAScheduler(
        time_attr="training_iteration", max_t=max_t, grace_period=grace, reduction_factor=3
    )
    rays = sorted(m for m, _ in scheduler._brackets[0]._rungs if m < max_t)
    assert asha_milestones(max_t, grace) == rays


def expected_trial_epochs(
    num_samples: int, max_epochs: int, *, scheduler: str, grace_period: int
) -> float:
    """Epochs summed over all trials, run one after another (the order ASHA's rule sees them in
    when they reach rungs one by one), each epoch the same length."""
    return simulate_search(
        num_samples,
        slots=1,
        max_epochs=max_epochs,
        scheduler=scheduler,
        grace_period=grace_period,
        epoch_pool=[1.0],
    ).trial_epochs


def test_first_rung_alone_matches_the_closed_form():
    """One rung: trial i (1-based) continues with chance (i - 1 - h) / i, h = (2/3)(i - 2), the
    newcomer's uniform rank against the linear-interpolated percentile; the first always does."""
    n = 12
    survivors = 1 + sum((i - 1 - (2 / 3) * (i - 2)) / i for i in range(2, n + 1))
    expected = n * 1 + survivors * (2 - 1)  # everyone runs epoch 1, survivors epoch 2
    got = expected_trial_epochs(n, 2, scheduler="asha", grace_period=1)
    assert got == pytest.approx(expected, rel=0.02)


def test_fifo_runs_every_epoch_and_asha_never_more():
    assert expected_trial_epochs(16, 4, scheduler="fifo", grace_period=1) == 64
    assert expected_trial_epochs(16, 4, scheduler="asha", grace_period=1) < 64
    # No rung below max_epochs: ASHA cannot stop anything.
    assert expected_trial_epochs(16, 2, scheduler="asha", grace_period=2) == 32


def _simulated_asha_epochs(num_samples: int, max_t: int, grace: int, runs: int) -> float:
    """Ray's own bracket, trials one after another with iid scores: mean epochs in all."""
    rng = np.random.default_rng(0)
    totals = []
    for _ in range(runs):
        bracket = _Bracket(grace, max_t, 3, 0)
        total = 0
        for i in range(num_samples):
            trial = SimpleNamespace(trial_id=str(i))
            score = rng.normal()
            for epoch in range(1, max_t + 1):
                total += 1
                if bracket.on_result(trial, epoch, score) == "STOP":
                    break
        totals.append(total)
    return float(np.mean(totals))


@pytest.mark.parametrize(("num_samples", "max_t", "grace"), [(16, 4, 1), (24, 12, 2), (40, 9, 1)])
def test_expected_epochs_match_rays_asha_in_simulation(num_samples, max_t, grace):
    predicted = expected_trial_epochs(num_samples, max_t, scheduler="asha", grace_period=grace)
    simulated = _simulated_asha_epochs(num_samples, max_t, grace, runs=400)
    assert predicted == pytest.approx(simulated, rel=0.03)


def _fifo(num_samples: int, n_slots: int, epochs: int, costs: SlotCosts):
    return simulate_search(
        num_samples,
        slots=n_slots,
        max_epochs=epochs,
        scheduler="fifo",
        grace_period=1,
        epoch_pool=[2.0],
        costs=costs,
        runs=1,
    )


def test_schedule_adds_up_every_slots_time():
    # 8 trials × 3 epochs × 2 s on 2 slots: each slot runs 4 trials; 4 s before its first
    # epoch, 0.5 s between epochs, 1 s between trials, 0.3 s to wind up.
    costs = SlotCosts(first_trial=4.0, between_epochs=0.5, between_trials=1.0, finish=0.3)
    sim = _fifo(8, 2, 3, costs)
    assert sim.trial_epochs == 24
    assert sim.busy_s == 48
    assert sim.wall_s == pytest.approx(4.0 + 4 * (3 * 2.0 + 2 * 0.5) + 3 * 1.0 + 0.3)


def test_schedule_tail_leaves_slots_idle():
    """3 equal trials on 2 slots: the third runs alone; a fourth would have been free."""
    three, four = _fifo(3, 2, 2, SlotCosts()), _fifo(4, 2, 2, SlotCosts())
    assert three.wall_s == four.wall_s == 8.0
    assert _fifo(2, 16, 2, SlotCosts()).wall_s == 4.0  # more slots than trials


def test_asha_under_concurrency_stops_trials_and_shortens_the_search():
    common = dict(max_epochs=9, grace_period=1, epoch_pool=[1.0, 2.0, 3.0], seed=3)
    fifo = simulate_search(24, slots=4, scheduler="fifo", **common)
    asha = simulate_search(24, slots=4, scheduler="asha", **common)
    assert fifo.trial_epochs == 24 * 9
    assert asha.trial_epochs < fifo.trial_epochs / 2
    assert asha.wall_s < fifo.wall_s
    assert simulate_search(24, slots=8, scheduler="asha", **common).wall_s < asha.wall_s


@pytest.mark.parametrize(
    ("nodes", "options", "expected"),
    [
        ([(2, 0)], {}, 2),
        ([(16, 0)], {"cpus_per_trial": 3}, 5),
        ([(16, 0)], {"max_concurrent": 4}, 4),
        ([(64, 2)], {"gpus_per_trial": 0.5}, 4),
        ([(64, 0)], {"num_samples": 3}, 3),
        ([(1, 0)], {"cpus_per_trial": 2}, 1),
        ([(6, 0)] * 3, {"cpus_per_trial": 4}, 3),  # per node: one 4-CPU trial in 6 CPUs
        ([(0, 0)], {"max_concurrent": 2}, 2),  # none up yet: as many as the search starts
    ],
)
def test_slots_are_what_the_cluster_fits(nodes, options, expected):
    cluster = ClusterInfo("127.0.0.1:6379", cpus=sum(c for c, _ in nodes),
                          gpus=sum(g for _, g in nodes), nodes=len(nodes),
                          node_resources=tuple(nodes))  # fmt: skip
    assert trial_slots(SearchSettings(**options), cluster) == expected


def test_cost_model_recovers_the_costs_it_was_made_from():
    true_coef = np.array([2e-4, 3e-4, 2.5e-4, 4e-4, 2e-9, 8e-9, 1.5e-10])
    configs = sample_space(40, seed=1)
    step_s = [float(step_features(c) @ true_coef) for c in configs]
    val_s = [1e-3 + 2e-11 * 5000 * i for i in range(1, 41)]
    model = EpochCostModel.fit(configs, step_s, 5000, val_s)
    for config in sample_space(10, seed=2):
        assert model.step_s(config) == pytest.approx(float(step_features(config) @ true_coef))
    steps = math.ceil(1000 / REFERENCE.batch_size)
    assert model.epoch_s(REFERENCE, 1000, 5000) > steps * model.step_s(REFERENCE)


def test_space_samples_are_valid_configs_within_the_ranges_and_seeded():
    configs = sample_space(300, seed=0)
    assert configs == sample_space(300, seed=0)
    assert {c.family for c in configs} == {
        "MLP1Layer",
        "MLP2Layer",
        "MLP3LayerDropout",
        "MLP2LayerBatchNorm",
    }
    assert {c.batch_size for c in configs} == set(BATCH_SIZES)
    for c in configs:
        assert ModelConfig.from_dict(c.to_dict()) == c
        for key, (low, high) in WIDTH_RANGES.items():
            width = getattr(c, key)
            assert width is None or low <= width <= high


def test_clock_splits_a_workers_time_into_gaps():
    clock = SearchClock(started=100.0)
    e = [
        EpochTiming("a", 1, seconds=2.0, at=105.0, pid=1),  # first start at 103
        EpochTiming("a", 2, seconds=2.0, at=107.5, pid=1),  # 0.5 s between epochs
        EpochTiming("b", 1, seconds=1.0, at=109.5, pid=1),  # 1.0 s between trials
        EpochTiming("c", 1, seconds=3.0, at=108.0, pid=2),  # first start at 105
    ]
    clock.epochs.extend(e)
    gaps = clock.gaps()
    assert sorted(gaps["first_trial"]) == [3.0, 5.0]
    assert gaps["between_epochs"] == [0.5]
    assert gaps["between_trials"] == [1.0]
    assert clock.summary()["first_trial"] == 4.0
    idle = clock.idle_breakdown(wall_s=10.0, slots=2)
    assert idle["tail_and_other"] == pytest.approx(20 - 8 - 8 - 0.5 - 1.0)
    assert clock.epochs_per_trial() == {"a": 2, "b": 1, "c": 1}


def test_a_time_budget_caps_the_predicted_wall_and_trials():
    from poptune.estimate.forecast import Calibration, predict_search

    model = EpochCostModel(step_coef=(2e-4, 3e-4, 2.5e-4, 4e-4, 2e-9, 8e-9, 1.5e-10),
                           val_coef=(1e-3, 2e-11))  # fmt: skip
    calibration = Calibration(costs=SlotCosts(), speed=1.0, ray_start=3.0, slots=2)
    rows = {"train_rows": 20_000, "val_rows": 2_500}
    unbounded = predict_search(
        SearchSettings(num_samples=400, max_epochs=10), model, calibration, **rows
    )
    budget = unbounded.wall_s / 4
    capped = predict_search(
        SearchSettings(num_samples=400, max_epochs=10, time_budget=budget),
        model,
        calibration,
        **rows,
    )
    per_trial = unbounded.wall_s * 2 / 400
    assert capped.wall_s == pytest.approx(budget + per_trial / 2, rel=0.15)
    assert capped.trials == pytest.approx(400 / 4, rel=0.15)
    # A budget longer than the search changes nothing: num_samples ends it first.
    loose = predict_search(
        SearchSettings(num_samples=40, max_epochs=10, time_budget=1e6), model, calibration, **rows
    )
    assert loose.trials == 40 and loose.wall_s < 1e6
