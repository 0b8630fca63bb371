"""The quality benchmark's anchor figures, from made-up runs: which anchor is the best, the ratio
of excess errors, the time poptune's search took to reach that anchor's validation error; and the
anchors that are not installed are named, not a crash."""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks import _anchors
from benchmarks._anchors import Anchor
from benchmarks._common import Figure
from benchmarks.quality import Outcome, _anchor_figures, first_at_or_below


def _runs() -> dict[str, list]:
    floor = [15.0, 14.0]
    pop = [
        Outcome(rmse=15.3, wall_s=50, extra={"final_rmse": 15.2}, curve=[(5, 240), (9, 230)]),
        Outcome(rmse=14.3, wall_s=40, extra={"final_rmse": 14.1}, curve=[(6, 250), (20, 235)]),
    ]
    anchors = [
        {"LightGBM": Anchor(15.5, 236, 2), "TabM-D": Anchor(15.3, 233, 300)},
        {"LightGBM": Anchor(14.4, 250, 2), "TabM-D": Anchor(14.5, 240, 320)},
    ]
    return {"floor": floor, "pop": pop, "anchors": anchors}


def test_the_best_anchor_is_the_least_mean_excess_and_the_ratio_is_of_the_means():
    excess, reach = _anchor_figures("20k", _runs())
    # excess: final 0.2 and 0.1; TabM-D 0.3 and 0.5 (mean 0.4), LightGBM 0.5 and 0.4 (0.45)
    assert excess.name == "quality 20k: final excess / best anchor's"
    assert excess.value == pytest.approx(0.15 / 0.4)
    assert excess.target == "<= 0.7" and excess.met
    assert "best anchor TabM-D" in excess.detail
    # TabM-D's val MSE 233 reached at 9 s on seed 0; 240 on seed 1 at 20 s
    assert reach.name == "quality 20k: time to TabM-D's val MSE, poptune search / TabM-D fit"
    assert reach.value == pytest.approx((9 / 300 + 20 / 320) / 2)
    assert "9 s, 20 s" in reach.detail


def test_a_search_that_never_reached_the_anchor_says_never():
    runs = _runs()
    runs["pop"][1] = Outcome(rmse=14.3, wall_s=40, extra={"final_rmse": 14.9}, curve=[(6, 260)])
    excess, reach = _anchor_figures("20k", runs)
    assert not excess.met  # final excess 0.9 on seed 1: (0.2 + 0.9) / 2 over 0.4
    assert "9 s, never" in reach.detail
    assert reach.value == pytest.approx(9 / 300)
    assert first_at_or_below([(3, 10.0), (1, 9.0), (2, 8.0)], 9.0) == 1


def test_anchors_that_are_not_installed_are_named_and_left_out(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "pytabkit" else real(name)
    )
    assert {"TabM-D", "RealMLP-TD"} <= set(_anchors.missing())
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert _anchors.missing() == ["LightGBM", "FLAML", "TabM-D", "RealMLP-TD"]
    # nothing is imported or fitted (the split is never looked at)
    assert _anchors.run_anchors(prepared=None, seed=0, wall_s=1.0) == {}


@pytest.mark.parametrize(
    ("target", "value", "met"),
    [("<= 1", 1.0, True), ("< 1", 1.0, False), ("< 1", 0.98, True), (">= 0.85", 0.8, False),
     ("> 0.85", 0.9, True), ("", 5.0, None)],
)  # fmt: skip
def test_a_figures_target_reads_its_operator(target: str, value: float, met: bool | None):
    assert Figure("f", value, target, "").met is met


def test_a_target_with_an_unknown_operator_is_refused():
    with pytest.raises(ValueError, match="must be one of"):
        _ = Figure("f", 1.0, "== 1", "").met
