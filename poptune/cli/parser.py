"""The `poptune` parser, generated from the settings classes' fields (:mod:`poptune.options`):
only the options that are no setting (--config, the positional arguments, `export`, `predict`
and `synth`) are written here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from poptune.errors import UsageError
from poptune.options import Option, add_options, argparse_type, integer, options_of, read_config

CONFIG = Option(
    "config",
    metavar="FILE.yaml",
    help="YAML file whose keys are these long option names; flags override it",
)
SEARCH_GROUP = "search options (also readable from --config FILE.yaml)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def search_options() -> list[Option]:
    """The options of `search` and `estimate`, the keys their --config file may hold."""
    from poptune.driver.settings import DATA_OPTIONS, SearchSettings

    return [*DATA_OPTIONS, *options_of(SearchSettings)]


def analysis_options() -> list[Option]:
    """The options `run` adds to the search's (`analyze` also takes --data)."""
    from poptune.analysis.settings import AnalyzeSettings

    return [o for o in options_of(AnalyzeSettings) if o.name != "data"]


def command_options(command: str) -> list[Option]:
    return [*search_options(), *(analysis_options() if command == "run" else ())]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `poptune` parser. With ``only``, the options of that command alone: the others'
    would import their settings classes, and with them pandas or torch, for nothing."""
    parser = _Parser(
        prog="poptune",
        description="Distributed hyperparameter search for small PyTorch MLPs that predict "
        "Spotify track popularity from audio features (Ray Tune + Optuna TPE).",
        epilog="Every command has its own --help. Exit codes: 0 ok, 2 bad input, 1 internal "
        "error, 3 some trials errored, 4 disk full (resumable), 130 interrupted (resumable).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (kwargs, add_arguments) in _COMMANDS.items():
        command = sub.add_parser(name, **kwargs)
        if only in (None, name):
            add_arguments(command)
    return parser


def _search_arguments(p: argparse.ArgumentParser) -> None:
    add_options(p.add_argument_group(SEARCH_GROUP), [CONFIG, *search_options()])


def _run_arguments(p: argparse.ArgumentParser) -> None:
    _search_arguments(p)
    add_options(p.add_argument_group("analysis options"), analysis_options())


def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    from poptune.analysis.settings import AnalyzeSettings

    p.add_argument(
        "exp_dir",
        metavar="EXP_DIR",
        help="the experiment: <storage>/<name>, a folder or an s3://, gs:// URI",
    )
    add_options(p, [o for o in options_of(AnalyzeSettings) if o.name == "data"])
    add_options(p.add_argument_group("analysis options"), analysis_options())


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "exp_dir", metavar="EXP_DIR", help="<storage>/<name>, a folder or an s3://, gs:// URI"
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="output file; YAML when it ends in .yaml/.yml (default: print JSON)",
    )


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_dir", metavar="MODEL_DIR", help="model bundle dir, e.g. EXP_DIR/analysis/model"
    )
    p.add_argument("--data", metavar="CSV", required=True, help="tracks CSV (.csv, .csv.gz)")
    p.add_argument("--out", metavar="CSV", required=True, help="output CSV path")


def _synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rows",
        type=argparse_type(integer),
        default=None,
        help="rows (default: the built-in size)",
    )
    p.add_argument(
        "--seed", type=argparse_type(integer), default=0, help="generator seed (default: 0)"
    )
    p.add_argument(
        "--difficulty",
        default="easy",
        metavar="easy|real",
        help="easy (default) or real: as noisy as the Kaggle file",
    )
    p.add_argument("--out", metavar="CSV", required=True, help="output CSV path")


# The commands in the order --help lists them: add_parser's arguments, and what adds the options.
# Unless given, the search commands' options stay out of the values: their settings class has
# the defaults, and a resumed search tells the options given from the rest.
_SUPPRESS = {"argument_default": argparse.SUPPRESS}
_COMMANDS = {
    "run": ({"help": "search, then analyze, then export: the main job", **_SUPPRESS},
            _run_arguments),
    "search": ({"help": "search only; writes the experiment dir", **_SUPPRESS},
               _search_arguments),
    "estimate": ({
        "help": "predict the wall time of the search these options describe",
        "description": "Predict how long `poptune search` with the same options will take: time "
        "a few configs in this process, run a short calibration search on the cluster (a few "
        "trials of 3 epochs on a slice of the rows, in a temporary folder, or with remote "
        "--storage a temporary prefix there that the cluster's nodes can reach), then count "
        "epochs (ASHA's included) over the slots. Takes about half a minute; removes what it "
        "wrote and leaves the storage as it was.",
        **_SUPPRESS}, _search_arguments),
    "analyze": ({"help": "retrain the finalists with several seeds, choose the winner, score it "
                 "and the baselines"},
                _analyze_arguments),
    "export": ({"help": "write the best config as JSON or YAML"}, _export_arguments),
    "predict": ({
        "help": "predict popularity for a tracks CSV with a model bundle",
        "description": "Predict popularity (clipped to 0-100) for every valid row of a tracks "
        "CSV with the model bundle `poptune analyze` writes to EXP_DIR/analysis/model. The CSV "
        "is validated like the search's input (popularity may be absent); broken rows are "
        "dropped and counted. Writes the columns track_id, popularity_pred."}, _predict_arguments),
    "synth": ({"help": "write the built-in synthetic dataset as a CSV"}, _synth_arguments),
}  # fmt: skip


# ----------------------------------------------------------------------------- values


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given to a search command: those of --config, overridden by the flags."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "config")}
    if not getattr(args, "config", None):
        return given
    return {**read_config(Path(args.config), command_options(args.command)), **given}
