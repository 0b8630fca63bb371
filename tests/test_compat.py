"""The doors to Optuna's, Ray's and torch's private names: outside the versions each was written
for (or with POPTUNE_PUBLIC_PATHS=1) poptune takes the library's public path, says once what is
lost, and still runs; and no module outside poptune/compat reaches such a name."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from poptune import compat
from poptune.compat import optuna_compat
from poptune.driver.settings import SearchSettings
from poptune.driver.tune_config import sampler_for
from poptune.layout import STUDY_FILE
from poptune.samplers.window import WindowedSampler
from poptune.studies.database import SingleWriterStorage, driver_study_storage
from poptune.studies.study_file import StudyFile
from tests.test_study_file import _ask, _read, _view

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(compat, "_warned", set())
    monkeypatch.delenv(compat.PUBLIC_PATHS_ENV, raising=False)


def test_the_installed_optuna_takes_the_fast_paths(tmp_path, capsys):
    assert optuna_compat.fast_paths()
    assert isinstance(sampler_for(SearchSettings(name="x")), WindowedSampler)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(driver_study_storage(storage), SingleWriterStorage)
    assert capsys.readouterr().err == ""


def test_another_optuna_takes_the_public_paths_and_says_so_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(optuna, "__version__", "5.1.0")
    sampler = sampler_for(SearchSettings(name="x", seed=3))
    assert type(sampler) is optuna.samplers.TPESampler
    assert sampler._constant_liar and sampler._multivariate and sampler._group
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    assert driver_study_storage(storage) is storage
    assert not optuna_compat.fast_paths()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "poptune: warning: Optuna 5.1.0 is not a version poptune was written for (5.0); using "
        "Optuna's own TPESampler and storage API (the same search, slower per suggestion at "
        "thousands of trials)"
    ]


def test_the_study_copy_on_the_public_path_equals_the_study(monkeypatch, tmp_path):
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    url = f"sqlite:///{tmp_path / 'optuna_study.db'}"
    study = optuna.create_study(study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    copy = StudyFile(url, "s")
    running = []
    for i in range(6):
        trial = _ask(study)
        trial.report(float(i), step=1)
        if i % 3 == 0:
            running.append(trial)
        elif i % 3 == 1:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, float(i))
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 6
    for trial in running:  # finished since the last write, and new ones
        study.tell(trial, 1.0)
    study.tell(_ask(study), 2.0)
    copy.write(study)
    assert _read(url) == _view(study) and len(_view(study)) == 7


@pytest.mark.ray
def test_a_search_on_the_public_paths_completes_every_trial(ray_cluster, ray_env, tmp_path):
    env = {**os.environ, **ray_env, compat.PUBLIC_PATHS_ENV: "1"}
    args = [sys.executable, "-m", "poptune", "search", "--address", ray_cluster.address,
            "--synthetic-rows", "800", "--num-samples", "6", "--max-epochs", "2",
            "--storage", str(tmp_path / "runs"), "--name", "public"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "POPTUNE_PUBLIC_PATHS is set; using Optuna's own TPESampler" in proc.stderr
    assert "POPTUNE_PUBLIC_PATHS is set; a cluster address is not probed" in proc.stderr
    assert "POPTUNE_PUBLIC_PATHS is set; each suggestion goes through Ray's" in proc.stderr
    assert "6 finished, 0 errored, 0 unfinished" in proc.stdout
    url = f"sqlite:///{tmp_path / 'runs' / 'public' / STUDY_FILE}"
    study = optuna.load_study(study_name="public", storage=url)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)


def test_no_module_but_the_door_imports_optuna_compat_modules():
    import re
    from pathlib import Path

    package = Path(optuna_compat.__file__).parents[1]
    private = re.compile(r"^\s*(from|import) optuna\.\w+\._", re.MULTILINE)
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if "compat" not in p.relative_to(package).parts and private.search(p.read_text())
    ]
    assert offenders == []


# -- Ray ---------------------------------------------------------------------------------------


def _warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "poptune: warning" in line]


class _Recorder:
    """Stands in for one of Ray's private calls: records that it was made."""

    def __init__(self, returns=None) -> None:
        self.calls, self.returns = [], returns

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.returns


@pytest.fixture
def fake_raylet(monkeypatch):
    """ray._raylet with the two calls a private local Ray's start makes, recorded."""
    from types import SimpleNamespace

    import ray

    initialize, reset = _Recorder(), _Recorder()
    loader = SimpleNamespace(reset_cache=reset)
    fake = SimpleNamespace(
        Config=SimpleNamespace(initialize=initialize),
        AuthenticationTokenLoader=SimpleNamespace(instance=lambda: loader),
    )
    monkeypatch.setattr(ray, "_raylet", fake)
    # Recorded by setenv, so that whatever the code under test sets is undone afterwards.
    monkeypatch.setenv("RAY_AUTH_MODE", "unset")
    monkeypatch.delenv("RAY_AUTH_MODE")
    return SimpleNamespace(initialize=initialize, reset_cache=reset)


def test_the_installed_ray_turns_token_auth_on_with_its_config_refreshed(fake_raylet, capsys):
    from poptune.compat import ray_compat

    ray_compat.enable_token_auth()
    ray_compat.reset_auth_token_cache()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert fake_raylet.initialize.calls == [("",)] and fake_raylet.reset_cache.calls == [()]
    assert _warnings(capsys) == []


def test_another_ray_leaves_token_auth_to_ray_and_says_so_once(monkeypatch, fake_raylet, capsys):
    import ray

    from poptune.compat import ray_compat

    monkeypatch.setattr(ray, "__version__", "2.61.0")
    for _ in range(2):
        ray_compat.enable_token_auth()
        ray_compat.reset_auth_token_cache()
    # Not set without the refresh: a driver in "disabled" mode against a GCS in "token" mode.
    assert "RAY_AUTH_MODE" not in os.environ
    assert fake_raylet.initialize.calls == [] and fake_raylet.reset_cache.calls == []
    assert _warnings(capsys) == [
        "poptune: warning: Ray 2.61.0 is not a version poptune was written for (2.60); poptune "
        "leaves token authentication of its private local Ray to Ray's own default (Ray 2.60 "
        "turns it on, with a warning of its own)",
        "poptune: warning: Ray 2.61.0 is not a version poptune was written for (2.60); Ray's "
        "token cache is not refreshed after poptune writes the token file; should Ray have "
        "looked for a token already, it generates one of its own",
    ]


def test_an_auth_mode_the_user_set_needs_no_refresh_and_no_warning(
    monkeypatch, fake_raylet, capsys
):
    from poptune.compat import ray_compat

    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray_compat.enable_token_auth()
    assert os.environ["RAY_AUTH_MODE"] == "disabled" and fake_raylet.initialize.calls == []
    assert _warnings(capsys) == []


def test_a_ray_without_the_private_names_degrades_instead_of_failing(monkeypatch, capsys):
    from types import SimpleNamespace

    import ray

    from poptune.compat import ray_compat

    monkeypatch.setattr(ray, "_raylet", SimpleNamespace())
    monkeypatch.setenv("RAY_AUTH_MODE", "unset")
    monkeypatch.delenv("RAY_AUTH_MODE")
    ray_compat.enable_token_auth()
    ray_compat.reset_auth_token_cache()
    assert "RAY_AUTH_MODE" not in os.environ
    err = _warnings(capsys)
    assert len(err) == 2 and all("lacks a private name poptune uses" in line for line in err)


def test_single_machine_mode_only_on_the_installed_ray(monkeypatch, capsys):
    from ray._private import ray_constants

    from poptune.compat import ray_compat

    before = ray_constants.ENABLE_RAY_CLUSTER
    with ray_compat.single_machine_mode():
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    assert ray_constants.ENABLE_RAY_CLUSTER is before
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    for _ in range(2):
        with ray_compat.single_machine_mode():
            assert ray_constants.ENABLE_RAY_CLUSTER is before  # Ray's own choice, untouched
    assert _warnings(capsys) == [
        "poptune: warning: POPTUNE_PUBLIC_PATHS is set; a private local Ray may listen on this "
        "machine's network addresses, not on 127.0.0.1 only (its token authentication still "
        "guards it)"
    ]


def test_without_the_probe_an_address_goes_straight_to_ray_init(monkeypatch, capsys):
    import socket

    import ray

    from poptune.cluster import session
    from poptune.cluster.probe import probe_gcs

    def no_probe(address):
        raise AssertionError("probed")

    class Joined(Exception):
        pass

    def init(**kwargs):
        raise Joined(kwargs["address"])

    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    monkeypatch.setattr(session, "check_cluster", no_probe)
    monkeypatch.setattr(ray, "init", init)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        with pytest.raises(Joined, match=address), session.ray_session(address):
            pass
        # The probe's child asks Ray's private calls the same question, and answers "ok".
        assert probe_gcs(address).result == "ok"
    assert _warnings(capsys) == [
        "poptune: warning: POPTUNE_PUBLIC_PATHS is set; a cluster address is not probed before "
        "joining: ray.init itself reports a wrong port or token, after its own retries (tens of "
        "seconds)"
    ]


def test_the_autoscalers_config_is_read_only_from_the_installed_ray(monkeypatch, capsys):
    from ray._private import state

    from poptune.compat import ray_compat

    reported = object()
    monkeypatch.setattr(state.state, "get_cluster_config", lambda: reported)
    assert ray_compat.cluster_config() is reported
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    assert ray_compat.cluster_config() is None
    assert ray_compat.cluster_config() is None
    [line] = _warnings(capsys)
    assert "the node groups an autoscaler reports to Ray (KubeRay) are not read" in line


def test_another_ray_suggests_through_rays_own_proxy(monkeypatch, capsys):
    import ray
    from ray.tune.search.optuna import OptunaSearch

    from poptune.driver.searcher import PoptuneOptunaSearch
    from poptune.metric import METRIC, MODE
    from poptune.spaces import define_space

    rays_own = OptunaSearch._suggest_from_define_by_run_func
    calls = []

    def counted(self, func, ot_trial):
        calls.append(ot_trial.number)
        return rays_own(self, func, ot_trial)

    monkeypatch.setattr(OptunaSearch, "_suggest_from_define_by_run_func", counted)

    def configs() -> list[dict]:
        search = PoptuneOptunaSearch(space=define_space, metric=METRIC, mode=MODE, max_epochs=1,
                                     sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
        return [search.suggest(f"t{i}") for i in range(3)]

    fast = configs()
    assert calls == []
    monkeypatch.setattr(ray, "__version__", "2.61.0")
    assert configs() == fast
    assert calls == [0, 1, 2]
    [line] = _warnings(capsys)
    assert line.endswith("each suggestion goes through Ray's capturing proxy (the same configs, "
                         "about 5% slower a suggestion)")  # fmt: skip


def test_rays_class_state_gone_is_an_error_naming_the_fix(monkeypatch):
    import ray

    from poptune.compat import ray_tune_compat

    monkeypatch.setattr(ray, "__version__", "2.70.0")
    readers = [ray_tune_compat.optuna_study_of, ray_tune_compat.optuna_trials_of,
               ray_tune_compat.completed_trials_of, ray_tune_compat.trial_runs_of]  # fmt: skip
    for read in readers:
        with pytest.raises(RuntimeError, match=r"Ray 2\.70\.0's .*written for Ray 2\.60\); .*"
                           r"pip install -c constraints\.txt 'ray\[tune\]'"):  # fmt: skip
            read(object())
    with pytest.raises(RuntimeError, match=r"holds no _ot_study.*pip install -c constraints"):
        ray_tune_compat.saved_optuna_study({"_ot_trials": {}})
    study = optuna.create_study()
    assert ray_tune_compat.saved_optuna_study({"_ot_study": study}) is study
    assert ray_tune_compat.saved_optuna_study(("an", "older", "form")) is None


# -- torch -------------------------------------------------------------------------------------


def _plain_model():
    from torch import nn

    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))


def test_the_installed_torch_tells_a_hooked_model(capsys):
    import torch

    from poptune.compat import torch_compat

    model = _plain_model()
    assert not torch_compat.may_have_hooks(model)
    handle = model[1].register_forward_hook(lambda *args: None)
    assert torch_compat.may_have_hooks(model)
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda *args: None)
    try:
        assert torch_compat.may_have_hooks(model)
    finally:
        handle.remove()
    assert not torch_compat.may_have_hooks(model)
    assert _warnings(capsys) == []


def test_where_hooks_cannot_be_told_a_model_is_called_as_a_module(monkeypatch, capsys):
    from torch.nn.modules import module as torch_module

    from poptune.compat import torch_compat
    from poptune.trainables.steps import layer_by_layer as _layer_by_layer

    model = _plain_model()
    monkeypatch.setenv(compat.PUBLIC_PATHS_ENV, "1")
    assert torch_compat.may_have_hooks(model)
    assert _layer_by_layer(model) is model  # the usual call, hooks or not
    [line] = _warnings(capsys)
    assert line.startswith("poptune: warning: POPTUNE_PUBLIC_PATHS is set; every training batch")
    monkeypatch.delenv(compat.PUBLIC_PATHS_ENV)
    monkeypatch.setattr(compat, "_warned", set())
    monkeypatch.delattr(torch_module, "_global_forward_hooks")
    assert torch_compat.may_have_hooks(model)  # a torch without the name: the safe answer
    [line] = _warnings(capsys)
    assert "lacks a private name poptune uses" in line and "_global_forward_hooks" in line


def test_another_torch_trains_with_torchs_own_adamw_to_the_same_curve(
    monkeypatch, small_prepared, capsys
):
    import torch

    from poptune.trainables import ModelConfig, fit
    from poptune.trainables.flat_adamw import FlatAdamW, adamw
    from tests.numerics import assert_curves_close, curve_rtol

    config = ModelConfig.from_dict({"family": "MLP2Layer", "width_1": 24, "width_2": 8,
                                    "lr": 3e-3, "batch_size": 64, "weight_decay": 1e-2,
                                    "schedule": "cosine"})  # fmt: skip

    def curve(result) -> list[dict]:
        return [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]

    assert type(adamw(_plain_model().parameters(), lr=1e-3, weight_decay=0.0)) is FlatAdamW
    flat = fit(config, small_prepared, epochs=3, seed=2, threads=1)
    assert _warnings(capsys) == []

    monkeypatch.setattr(torch, "__version__", "2.14.0")
    optimizer = adamw(_plain_model().parameters(), lr=1e-3, weight_decay=0.0)
    assert isinstance(optimizer, torch.optim.AdamW) and not isinstance(optimizer, FlatAdamW)
    saved = {}

    def keep_state(stats, state) -> None:  # a deep copy, as the Ray trainable's checkpoint is
        buffer = io.BytesIO()
        torch.save(state(), buffer)
        buffer.seek(0)
        saved[stats["epoch"]] = torch.load(buffer, weights_only=True)

    whole = fit(config, small_prepared, epochs=3, seed=2, threads=1, on_epoch=keep_state)
    assert_curves_close(curve(whole), curve(flat), rtol=curve_rtol(config.family))
    # Its steps and rates resume: a run continued from epoch 1 replays the uninterrupted one.
    resumed = fit(config, small_prepared, epochs=3, seed=2, threads=1, resume_from=saved[1])
    assert curve(resumed) == curve(whole)
    err = _warnings(capsys)
    assert len(err) == 2 and all("torch 2.14.0 is not a version poptune" in line for line in err)
    assert any("training uses torch.optim.AdamW, not poptune's FlatAdamW" in line for line in err)


# -- one door per library ----------------------------------------------------------------------

# Ray's and torch's private names (modules, attributes of the classes poptune extends, torch's
# hook registries): outside poptune/compat none may appear, in code or in a comment.
_PRIVATE_NAMES = (
    r"\bray\._private\b",
    r"\bray\._raylet\b",
    r"\b_ot_study\b",
    r"\b_ot_trials\b",
    r"\b_completed_trials\b",
    r"\b_suggest_from_define_by_run_func\b",
    r"\b_trial_runs\b",
    r"\b_global_(forward|backward)(_pre)?_hooks\b",
    r"\._(forward|backward)(_pre)?_hooks\b",
)


def test_no_module_but_the_doors_names_rays_or_torchs_private_names():
    import re
    from pathlib import Path

    package = Path(optuna_compat.__file__).parents[1]
    private = re.compile("|".join(_PRIVATE_NAMES))
    offenders = [
        f"{p.relative_to(package)}: {found.group(0)}"
        for p in package.rglob("*.py")
        if "compat" not in p.relative_to(package).parts
        for found in [private.search(p.read_text())]
        if found
    ]
    assert offenders == []
