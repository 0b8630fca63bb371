"""--time-budget: the searcher stops starting trials once the budget is spent, carries the time
spent through save/restore (so --resume spends only what is left), and `poptune run` with a
budget goes end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import optuna
import pytest
from ray.tune.search import Searcher

from poptune.analysis.results import read_results
from poptune.driver import searcher as searcher_module
from poptune.driver import settings as settings_module
from poptune.driver.searcher import PoptuneOptunaSearch
from poptune.driver.settings import BUDGET_SAMPLE_CAP, SearchSettings, parse_duration
from poptune.metric import METRIC, MODE
from poptune.spaces import define_space


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock(100.0)
    monkeypatch.setattr(searcher_module.time, "monotonic", fake)
    return fake


def _searcher(budget: float | None) -> PoptuneOptunaSearch:
    return PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        sampler=optuna.samplers.RandomSampler(seed=0),
        max_epochs=2,
        time_budget_s=budget,
    )


def test_no_more_trials_once_the_budget_is_spent(clock):
    search = _searcher(10.0)
    assert isinstance(search.suggest("a"), dict)  # the clock starts at the first suggest
    clock.now += 9.9
    assert isinstance(search.suggest("b"), dict)
    assert not search.budget_spent
    clock.now += 0.2
    assert search.suggest("c") == Searcher.FINISHED
    assert search.budget_spent and search.spent_s == pytest.approx(10.1)


def test_without_a_budget_the_clock_never_stops_a_search(clock):
    search = _searcher(None)
    search.suggest("a")
    clock.now += 1e6
    assert isinstance(search.suggest("b"), dict) and not search.budget_spent


def test_time_spent_survives_save_and_restore(clock, tmp_path):
    first = _searcher(10.0)
    first.suggest("a")
    clock.now += 4.0
    first.save(str(tmp_path / "searcher.pkl"))
    assert first.spent_s == pytest.approx(4.0)  # saving does not disturb the running clock
    clock.now += 1.0
    assert first.spent_s == pytest.approx(5.0)

    clock.now = 5_000.0  # another driver process, another monotonic origin
    resumed = _searcher(10.0)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    assert resumed.spent_s == pytest.approx(4.0)  # what was spent before the save, only
    assert isinstance(resumed.suggest("b"), dict)
    clock.now += 6.5
    assert resumed.suggest("c") == Searcher.FINISHED


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), (" 2H ", 7200)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_budgets_are_usage_errors(cli):
    r = cli("search", "--time-budget", "ten minutes")
    assert r.code == 2 and "expected a duration such as 90, 90s, 10m or 2h" in r.err
    r = cli("search", "--time-budget", "0")
    assert r.code == 2 and "--time-budget must be a positive duration" in r.err
    assert SearchSettings(time_budget=5).time_budget == 5


@pytest.mark.ray
def test_run_with_a_time_budget_end_to_end(ray_cluster, ray_token, tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    args = [sys.executable, "-m", "poptune", "run", "--address", ray_cluster.address,
            "--synthetic-rows", "2000", "--time-budget", "6", "--max-epochs", "2",
            "--storage", str(tmp_path / "runs"), "--name", "budget", "--seeds", "2",
            "--finalists", "2"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"/{BUDGET_SAMPLE_CAP}]" not in proc.stdout  # no count to go to: the budget decides
    assert "0 unfinished" in proc.stdout  # trials never started are not owed
    metrics = json.loads((tmp_path / "runs" / "budget" / "analysis" / "metrics.json").read_text())
    search = metrics["search"]
    assert search["time_budget_s"] == 6
    assert search["wall_s"] >= 6  # it kept starting trials until the budget was spent
    assert 1 <= search["trials"] == search["terminated"] < BUDGET_SAMPLE_CAP
    # Finalists: the top 2 configs and each family's best, the winner by mean val MSE.
    finalists = metrics["finalists"]
    means = [f["val_mse_mean"] for f in finalists]
    assert means == sorted(means) and all(f["n"] == 2 for f in finalists)
    assert metrics["best_config"] == finalists[0]["config"]
    assert "finalists (retrained" in proc.stdout
    report = (tmp_path / "runs" / "budget" / "analysis" / "report.md").read_text()
    assert "## Finalists" in report and "time budget 6 s" in report


def test_the_settings_own_the_budget_and_name_defaults(monkeypatch):
    """The Python API gets what the command line gets: no trial cap under a budget, and a new
    experiment name for every search."""
    assert SearchSettings().num_samples == 24
    assert SearchSettings(time_budget=30).num_samples == BUDGET_SAMPLE_CAP
    assert SearchSettings(time_budget=30, num_samples=5).num_samples == 5
    names = {SearchSettings().name for _ in range(50)}  # within the same second, too
    assert len(names) == 50
    assert all(re.fullmatch(r"poptune-\d{8}-\d{6}-[0-9a-f]{4}", n) for n in names)
    # Random digits that repeat (as four hex digits do, now and then) still give new names.
    digits = iter(["abcd", "abcd", "abcd", "0123"])
    monkeypatch.setattr(settings_module.secrets, "token_hex", lambda n: next(digits))
    monkeypatch.setattr(settings_module.time, "strftime", lambda f: "poptune-20261203-120000-")
    assert [SearchSettings().name[-4:] for _ in range(2)] == ["abcd", "0123"]


@pytest.mark.ray
def test_the_budget_bounds_the_wall_not_only_the_starts(ray_cluster, ray_token, tmp_path):
    """Trials far from their last epoch end after the epoch in which the budget runs out, as
    finished trials the analysis can use; the line a user reads names the budget, not a cap."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token)}
    args = [sys.executable, "-m", "poptune", "search", "--address", ray_cluster.address,
            "--synthetic-rows", "1500", "--time-budget", "8", "--max-epochs", "50000",
            "--scheduler", "fifo", "--max-concurrent", "2",
            "--storage", str(tmp_path / "runs"), "--name", "long"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "until the time budget of 8 s is spent" in proc.stdout
    assert str(BUDGET_SAMPLE_CAP) not in proc.stdout
    assert "0 errored, 0 unfinished" in proc.stdout
    meta = json.loads((tmp_path / "runs" / "long" / "poptune_search.json").read_text())
    # Each trial could have run 50,000 epochs (hours); the search ended soon after its budget.
    assert 8 <= meta["wall_s"] < 8 + 120
    results = read_results(tmp_path / "runs" / "long")
    assert results.trials and all(t.status == "TERMINATED" for t in results.trials)
    assert all(1 <= t.epochs < 50_000 for t in results.trials)
    best = json.loads((tmp_path / "runs" / "long" / "best_config.json").read_text())
    assert best["family"] in {t.config.family for t in results.trials}


PYTHON_SEARCHES = """
import sys
import poptune
from poptune import DataSource, SearchSettings

common = dict(data=DataSource(synthetic_rows=600), max_epochs=1, storage=sys.argv[1])
quiet = lambda _: None
budgeted = poptune.search(SearchSettings(time_budget=30, **common), log=quiet)
first = poptune.search(SearchSettings(num_samples=1, **common), log=quiet)
second = poptune.search(SearchSettings(num_samples=1, **common), log=quiet)
print("RESULT", len(budgeted.trials), first.location, second.location, len(second.trials))
"""


@pytest.mark.ray
def test_python_search_with_a_budget_runs_past_24_trials_and_names_itself(
    ray_cluster, ray_env, tmp_path
):
    """From Python, as a notebook would: a budget alone decides how many trials run, and two
    default-named searches in a row each get a folder of their own."""
    env = {**os.environ, **ray_env, "RAY_ADDRESS": ray_cluster.address}
    args = [sys.executable, "-c", PYTHON_SEARCHES, str(tmp_path / "runs")]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    _, budgeted, first, second, second_trials = line.split()
    assert int(budgeted) > 24
    assert first != second and int(second_trials) == 1
    assert len(list((tmp_path / "runs").iterdir())) == 3
