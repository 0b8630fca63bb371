"""optuna-dashboard shows a poptune search as it is: its own WSGI app serves the study of a real
search on 127.0.0.1, and every trial read through its HTTP API (state, params, learning curve)
matches the study and the trials Tune ran."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import optuna_dashboard
import pytest
from optuna.samplers import TPESampler
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION

from poptune.driver.searcher import PoptuneOptunaSearch
from poptune.layout import STUDY_FILE
from poptune.metric import METRIC, MODE
from poptune.spaces import define_space
from tests.shared_search import MAX_EPOCHS, NAME, SAMPLES, asha_experiment

pytestmark = pytest.mark.ray

# How the dashboard's API names Optuna's trial states.
STATE_NAMES = {
    TrialState.COMPLETE: "Complete",
    TrialState.PRUNED: "Pruned",
    TrialState.FAIL: "Fail",
}
FAILED_VALUE = 987.5


@pytest.fixture(scope="module")
def experiment(ray_cluster, ray_token, tmp_path_factory) -> Path:
    return asha_experiment(ray_cluster, ray_token, tmp_path_factory)


@pytest.fixture(scope="module")
def study_url(experiment, tmp_path_factory) -> str:
    """A copy of the search's study with one more trial: one that failed, told to Optuna by
    poptune's searcher exactly as Tune has it do for a trial that errored for good."""
    copy = tmp_path_factory.mktemp("study") / STUDY_FILE
    shutil.copyfile(experiment / STUDY_FILE, copy)
    url = f"sqlite:///{copy}"
    searcher = PoptuneOptunaSearch(
        space=define_space,
        metric=METRIC,
        mode=MODE,
        sampler=TPESampler(seed=1),
        storage=optuna.storages.RDBStorage(url),
        study_name=NAME,
        max_epochs=MAX_EPOCHS,
    )
    assert searcher.suggest("errored") is not None
    searcher.on_trial_result("errored", {METRIC: FAILED_VALUE, TRAINING_ITERATION: 1})
    searcher.on_trial_complete("errored", error=True)
    return url


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def dashboard(study_url) -> Iterator[str]:
    """optuna-dashboard's own WSGI app, served on a free loopback port in a thread."""
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(study_url), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.read(), response.headers.get_content_type()


def _api(url: str) -> dict:
    status, body, content_type = _get(url)
    assert status == 200 and content_type == "application/json", (status, content_type)
    return json.loads(body)


@pytest.fixture(scope="module")
def shown(dashboard) -> dict:
    """The study as the dashboard's browser app reads it: the list, then the study's detail."""
    summaries = _api(f"{dashboard}/api/studies")["study_summaries"]
    assert [(s["study_name"], s["directions"]) for s in summaries] == [(NAME, ["minimize"])]
    return _api(f"{dashboard}/api/studies/{summaries[0]['study_id']}")


def test_every_trial_shows_its_state_params_and_curve_as_the_study_holds_them(shown, study_url):
    study = optuna.load_study(study_name=NAME, storage=study_url)
    held = {t.number: t for t in study.get_trials()}
    trials = {t["number"]: t for t in shown["trials"]}
    assert sorted(trials) == sorted(held) == list(range(SAMPLES + 1))
    for number, trial in trials.items():
        expected = held[number]
        assert trial["state"] == STATE_NAMES[expected.state], number
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        assert params == {name: str(value) for name, value in expected.params.items()}, number
        curve = [(v["step"], v["value"]) for v in trial["intermediate_values"]]
        assert curve == sorted(expected.intermediate_values.items()), number
        if expected.state == TrialState.COMPLETE:
            assert trial["values"] == [expected.value]
    states = [t["state"] for t in trials.values()]
    assert states.count("Complete") >= 1 and states.count("Pruned") >= 1
    assert states.count("Fail") == 1
    failed = next(t for t in trials.values() if t["state"] == "Fail")
    assert [(v["step"], v["value"]) for v in failed["intermediate_values"]] == [(1, FAILED_VALUE)]
    assert "values" not in failed or failed["values"] is None


def test_complete_trials_ran_every_epoch_and_pruned_ones_were_stopped_early(shown):
    for trial in shown["trials"]:
        steps = [v["step"] for v in trial["intermediate_values"]]
        if trial["state"] == "Complete":
            assert steps == list(range(1, MAX_EPOCHS + 1))
        elif trial["state"] == "Pruned":
            assert steps and steps == list(range(1, len(steps) + 1)) and len(steps) < MAX_EPOCHS
    best = shown["best_trials"]
    complete = [t for t in shown["trials"] if t["state"] == "Complete"]
    assert [b["number"] for b in best] == [min(complete, key=lambda t: t["values"][0])["number"]]


def test_the_dashboard_shows_the_trials_tune_ran(shown, experiment):
    """Each Tune trial folder (its config and its per-epoch val_mse) is one dashboard trial."""
    ran = {}
    for params_file in experiment.glob("*/params.json"):
        config = json.loads(params_file.read_text())
        rows = [json.loads(line) for line in (params_file.parent / "result.json").open()]
        key = json.dumps({k: str(v) for k, v in config.items()}, sort_keys=True)
        ran[key] = [(row[TRAINING_ITERATION], row[METRIC]) for row in rows]
    assert len(ran) == SAMPLES
    seen = {}
    for trial in shown["trials"]:
        if trial["state"] != "Fail":
            params = {p["name"]: p["param_external_value"] for p in trial["params"]}
            key = json.dumps(params, sort_keys=True)
            seen[key] = [(v["step"], v["value"]) for v in trial["intermediate_values"]]
    assert seen == ran
