"""Options declared once, on the settings fields: the parser and the --config check come from
them, and a field added to a settings class is an option everywhere without another edit."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest

import poptune
from poptune import cli
from poptune.analysis.settings import AnalyzeSettings
from poptune.cli.parser import build_parser
from poptune.driver.settings import DATA_OPTIONS, SearchSettings
from poptune.errors import UsageError
from poptune.lazy import lazy_names
from poptune.options import (
    add_options,
    changed_fields,
    check_choices,
    integer,
    option,
    options_of,
    read_config,
)

ROOT = Path(__file__).resolve().parents[1]


def help_of(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser(only=args[0]).parse_args([*args, "--help"])
    return " ".join(out.getvalue().split())  # argparse wraps lines at the terminal's width


def test_every_search_field_is_an_option_with_its_help_and_metavar():
    text = help_of("search")
    names = {f.name for f in dataclasses.fields(SearchSettings)} - {"data"}
    assert {o.name for o in options_of(SearchSettings)} == names
    for o in [*DATA_OPTIONS, *options_of(SearchSettings)]:
        shown = f"{o.flag} {o.metavar}" if o.metavar else o.flag
        assert shown in text and " ".join(o.help.split()) in text, o.name


def test_run_and_analyze_take_the_analysis_fields():
    run, analyze = help_of("run"), help_of("analyze", "x")
    for o in options_of(AnalyzeSettings):
        # run's --data is the search's, not the analysis's
        assert (" ".join(o.help.split()) in run) == (o.name != "data"), o.name
        assert f"{o.flag} {o.metavar}" in analyze, o.name


def test_an_option_is_parsed_and_defaults_to_the_field():
    @dataclasses.dataclass(frozen=True)
    class Settings:
        count: int = option(2, "N", parse=integer, help="how many")
        mode: str = option("a", choices=("a", "b"), help="which")
        loud: bool = option(False, help="say more")

    parser = build_parser(only="")
    add_options(parser, options_of(Settings))
    assert options_of(Settings)[1].metavar == "a|b"  # the choices, unless a metavar is given
    args = parser.parse_args(["--count", "3", "--mode", "b", "--loud"])
    assert (args.count, args.mode, args.loud) == (3, "b", True)
    with pytest.raises(UsageError, match="argument --count: expected an integer, but got 'x'"):
        parser.parse_args(["--count", "x"])
    assert Settings() == Settings(count=2, mode="a", loud=False)
    with pytest.raises(UsageError, match=r"--mode must be one of a, b, but got 'c'"):
        check_choices(Settings(mode="c"), "mode")
    assert changed_fields(Settings(count=5)) == {"count"}


def test_config_keys_are_converted_like_flags(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("num-samples: 4\n--resume: true\ntime_budget: 10m\nstudy_storage: null\n")
    options = [*DATA_OPTIONS, *options_of(SearchSettings)]
    values = read_config(path, options)
    assert values == {"num_samples": 4, "resume": True, "time_budget": 600.0, "study_storage": None}
    path.write_text("force: yes please\n")
    with pytest.raises(UsageError, match="force must be true or false, but got 'yes please'"):
        read_config(path, options)
    path.write_text("cpus_per_trial: lots\n")
    with pytest.raises(UsageError, match="cpus_per_trial: expected a number, but got 'lots'"):
        read_config(path, options)
    path.write_text("seeds: 2\n")  # an analysis option: `run`'s config only
    with pytest.raises(UsageError, match="unknown key 'seeds'; known keys: address, "):
        read_config(path, options)
    assert read_config(path, [*options, *options_of(AnalyzeSettings)]) == {"seeds": 2}


def test_flags_override_the_config_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "c.yaml").write_text("num_samples: 4\nmax_epochs: 3\n")
    seen = {}
    monkeypatch.setattr(cli.commands, "cmd_search", lambda values: seen.update(values) or 0)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["search", "--config", "c.yaml", "--num-samples", "9"]) == 0
    assert seen == {"num_samples": 9, "max_epochs": 3}


def test_no_argparse_private_names_in_the_tree():
    private = ("._actions", "_StoreTrueAction", "_SubParsersAction", "._option_string_actions")
    for path in [*ROOT.glob("poptune/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not [p for p in private if p in text], path


def test_lazy_names_load_on_first_use(monkeypatch):
    getattr_, dir_, all_ = lazy_names("poptune", {"poptune.errors": ("UsageError",)})
    monkeypatch.delitem(vars(poptune), "UsageError", raising=False)
    assert getattr_("UsageError") is UsageError
    assert vars(poptune)["UsageError"] is UsageError  # later lookups skip __getattr__
    assert all_ == ["UsageError"] and "UsageError" in dir_()
    with pytest.raises(AttributeError, match="module 'poptune' has no attribute 'nothing'"):
        getattr_("nothing")
