"""The driver-memory figure of benchmarks/chaos.py, from samples made up here: the growth is the
slope of a line fitted after the warm-up (what comes before it does not count), the detail says
where RSS started and ended, and the row reads as every other row of benchmarks/RESULTS.md."""

from __future__ import annotations

import re

import pytest

from benchmarks import __main__ as bench_main
from benchmarks.chaos import MEMORY, memory_figure, slope_per_1000


def _data(mb_per_1000: float, *, warm_up_jump: float = 150.0) -> dict:
    """RSS that leaps during the warm-up (Ray's workers, TPE's window filling), then grows by
    ``mb_per_1000`` with a sawtooth of +-1 MB on top."""
    samples = []
    for trials in range(MEMORY.every, MEMORY.trials + 1, MEMORY.every):
        ramp = min(trials, MEMORY.warm_up) / MEMORY.warm_up * warm_up_jump
        saw = 1.0 if (trials // MEMORY.every) % 2 else -1.0
        rss = 450.0 + ramp + mb_per_1000 * trials / 1000 + saw
        samples.append({"trials": trials, "rss_mb": rss, "s": trials / 14,
                        "tune_trials": trials + 32, "checkpoint_results": trials + 32})  # fmt: skip
    return {"rss_before_mb": 440.0, "samples": samples, "wall_s": 730.0,
            "types": [("dict", 12_000), ("list", 3_000)]}  # fmt: skip


def test_the_growth_is_the_slope_after_the_warm_up():
    data = _data(4.0)
    assert slope_per_1000(data["samples"], MEMORY.warm_up) == pytest.approx(4.0, abs=0.05)
    # Fitted from the first sample on, the warm-up's leap would count: over 10 MB per 1,000.
    assert slope_per_1000(data["samples"], 0) > 10
    figure = memory_figure(data, MEMORY)
    assert figure.value == pytest.approx(4.0, abs=0.05) and figure.met
    assert not memory_figure(_data(6.0), MEMORY).met


def test_the_detail_says_where_rss_started_and_ended():
    detail = memory_figure(_data(4.0), MEMORY).detail
    assert "line over the 33 samples (every 250 trials) from 2,000 trials on" in detail
    assert "driver RSS 440 MB before the search (Ray not started)" in detail
    assert "MB at 250 trials" in detail and "MB at 2,000" in detail and "MB at 10,000" in detail
    assert "search wall 730 s, 32 slots, surrogate trials" in detail
    # Tune lists the trials running and waiting too; the line is drawn against finished ones.
    assert (
        "Tune keeps 10,032 trials and 10,032 checkpoint results in memory (1.00 a trial)" in detail
    )


def test_the_row_reads_as_the_other_rows_of_results_md(tmp_path, monkeypatch):
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(bench_main, "RESULTS", results)
    figure = memory_figure(_data(4.0), MEMORY)
    bench_main._append("2026-12-03 12:00 · a machine", [("chaos", [figure], "l1", "l2", 5.0)], 5.0)
    [row] = [line for line in results.read_text().splitlines() if "driver memory" in line]
    pattern = (
        r"\| chaos driver memory: RSS growth per 1,000 trials \(10,000 trials\) \| 4(\.0\d)? MB "
        r"\| <= 5 \| yes \| least-squares line [^|]+ \|"
    )
    assert re.fullmatch(pattern, row), row
