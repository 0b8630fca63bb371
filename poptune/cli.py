"""`poptune` command line: parse → settings objects → calls; errors → one line and an exit code.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 1 unexpected
internal error (traceback with --debug); 3 the search finished but some trials errored;
130 interrupted (the experiment is saved: resume it with --resume).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poptune.errors import SearchInterrupted, UsageError

EXIT_USAGE, EXIT_INTERNAL, EXIT_TRIALS_ERRORED, EXIT_INTERRUPTED = 2, 1, 3, 130

# Options of `search` (and `run`) that map onto SearchSettings fields of the same name.
_SEARCH_KEYS = (
    "num_samples", "max_epochs", "scheduler", "sampler", "grace_period", "max_concurrent",
    "cpus_per_trial", "gpus_per_trial", "address", "storage", "name", "seed", "dedupe",
    "max_failures", "study_storage", "resume", "retry_errored", "force", "time_budget",
    "mlflow_tracking_uri",
)  # fmt: skip
_ANALYZE_KEYS = ("seeds", "finalists", "ensemble", "out")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="poptune",
        description="Distributed hyperparameter search for small PyTorch MLPs that predict "
        "Spotify track popularity from audio features (Ray Tune + Optuna TPE).",
        epilog="Every command has its own --help. Exit codes: 0 ok, 2 bad input, 1 internal "
        "error, 3 some trials errored, 130 interrupted (resumable).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="search, then analyze, then export: the main job",
        argument_default=argparse.SUPPRESS,
    )
    _add_search_options(run)
    _add_analyze_options(run)
    search = sub.add_parser(
        "search", help="search only; writes the experiment dir", argument_default=argparse.SUPPRESS
    )
    _add_search_options(search)
    estimate = sub.add_parser(
        "estimate",
        help="predict the wall time of the search these options describe",
        description="Predict how long `poptune search` with the same options will take: time a "
        "few configs in this process, run a short calibration search on the cluster (a few "
        "trials of 3 epochs on a slice of the rows, in a temporary folder), then count epochs "
        "(ASHA's included) over the slots. Takes about half a minute; writes nothing.",
        argument_default=argparse.SUPPRESS,
    )
    _add_search_options(estimate)

    analyze = sub.add_parser("analyze", help="retrain the best trial, score it and the baselines")
    analyze.add_argument(
        "exp_dir",
        metavar="EXP_DIR",
        help="the experiment: <storage>/<name>, a folder or an s3://, gs:// URI",
    )
    analyze.add_argument(
        "--data",
        metavar="PATH",
        default=None,
        help="the searched CSV, if it moved since the search (sha256-checked)",
    )
    _add_analyze_options(analyze)

    export = sub.add_parser("export", help="write the best config as JSON or YAML")
    export.add_argument(
        "exp_dir", metavar="EXP_DIR", help="<storage>/<name>, a folder or an s3://, gs:// URI"
    )
    export.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="output file; YAML when it ends in .yaml/.yml (default: print JSON)",
    )

    predict = sub.add_parser(
        "predict",
        help="predict popularity for a tracks CSV with a model bundle",
        description="Predict popularity (clipped to 0-100) for every valid row of a tracks CSV "
        "with the model bundle `poptune analyze` writes to EXP_DIR/analysis/model. The CSV is "
        "validated like the search's input (popularity may be absent); broken rows are dropped "
        "and counted. Writes the columns track_id, popularity_pred.",
    )
    predict.add_argument(
        "model_dir", metavar="MODEL_DIR", help="model bundle dir, e.g. EXP_DIR/analysis/model"
    )
    predict.add_argument("--data", metavar="CSV", required=True, help="tracks CSV (.csv, .csv.gz)")
    predict.add_argument("--out", metavar="CSV", required=True, help="output CSV path")

    synth = sub.add_parser("synth", help="write the built-in synthetic dataset as a CSV")
    synth.add_argument("--rows", type=_int, default=None, help="rows (default: the built-in size)")
    synth.add_argument("--seed", type=_int, default=0, help="generator seed (default: 0)")
    synth.add_argument(
        "--difficulty",
        default="easy",
        metavar="easy|real",
        help="easy (default) or real: as noisy as the Kaggle file",
    )
    synth.add_argument("--out", metavar="CSV", required=True, help="output CSV path")
    return parser


def _add_search_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search options (also readable from --config FILE.yaml)")
    g.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="YAML file whose keys are these long option names; flags override it",
    )
    g.add_argument(
        "--data",
        metavar="PATH",
        help="tracks CSV (.csv or .csv.gz); default: the built-in synthetic dataset",
    )
    g.add_argument(
        "--synthetic-rows",
        type=_int,
        metavar="N",
        help="rows of the built-in dataset when --data is not given (default: 30000)",
    )
    g.add_argument(
        "--synthetic-difficulty",
        metavar="easy|real",
        help="noise of the built-in dataset: easy (default) or real (as noisy as the Kaggle file)",
    )
    g.add_argument(
        "--num-samples",
        type=_int,
        metavar="N",
        help="trials to run (default: 24; with --time-budget, as many as the budget allows)",
    )
    g.add_argument(
        "--time-budget",
        type=_duration,
        metavar="SECONDS|10m|2h",
        help="stop starting trials once this much time is spent; running trials finish",
    )
    g.add_argument(
        "--max-epochs",
        type=_int,
        metavar="E",
        help="epochs of a trial that is not stopped early (default: 12)",
    )
    g.add_argument(
        "--scheduler",
        metavar="asha|fifo",
        help="asha stops weak trials early (default); fifo runs every trial in full",
    )
    g.add_argument(
        "--sampler",
        metavar="tpe|random",
        help="tpe: Optuna's TPE chooses each trial (default); random: a baseline to compare with",
    )
    g.add_argument(
        "--grace-period",
        type=_int,
        metavar="E",
        help="epochs every trial gets before ASHA may stop it (default: 2)",
    )
    g.add_argument(
        "--max-concurrent",
        type=_int,
        metavar="K",
        help="trials running at once (default: as many as the cluster fits)",
    )
    g.add_argument("--cpus-per-trial", type=_float, metavar="C", help="CPUs per trial (default 1)")
    g.add_argument(
        "--gpus-per-trial",
        type=_float,
        metavar="G",
        help="GPUs per trial, fractions allowed (default 0)",
    )
    g.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to join (default: $RAY_ADDRESS, else a private local Ray)",
    )
    g.add_argument(
        "--storage",
        metavar="PATH|URI",
        help="where experiments live: a path or s3://, gs:// URI (default: ./runs)",
    )
    g.add_argument(
        "--name", metavar="NAME", help="experiment name (default: poptune-<date>-<time>)"
    )
    g.add_argument(
        "--seed", type=_int, metavar="S", help="seed of split, sampler, models (default 0)"
    )
    g.add_argument(
        "--dedupe",
        metavar="track_id|none",
        help="keep one row per track_id (default) or none (the reference's protocol)",
    )
    g.add_argument(
        "--max-failures",
        type=_int,
        metavar="N",
        help="retries of a failed trial from its last checkpoint (default: 3)",
    )
    g.add_argument(
        "--study-storage",
        metavar="URL",
        help="SQLAlchemy URL of the Optuna study (default: SQLite in the experiment)",
    )
    g.add_argument(
        "--mlflow-tracking-uri",
        metavar="URI",
        help="also log every trial and the analysis to MLflow there: a folder, file:, sqlite:, "
        "http(s): URI (needs pip install 'poptune[mlflow]')",
    )
    g.add_argument("--resume", action="store_true", help="continue the experiment --name")
    g.add_argument(
        "--retry-errored", action="store_true", help="with --resume: rerun errored trials"
    )
    g.add_argument("--force", action="store_true", help="replace an existing experiment --name")


def _add_analyze_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("analysis options")
    g.add_argument(
        "--seeds", type=_int, metavar="K", help="retrain each finalist K times (default 3)"
    )
    g.add_argument(
        "--finalists",
        type=_int,
        metavar="K",
        help="re-evaluate the top K configs (and each family's best) and choose the winner by "
        "mean validation error (default 3)",
    )
    g.add_argument(
        "--ensemble",
        type=_int,
        metavar="K",
        help="also average the top-K distinct configs (default: off)",
    )
    g.add_argument("--out", metavar="DIR", help="analysis output dir (default: EXP_DIR/analysis)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, but got {text!r}") from None


def _duration(text: str) -> float:
    from poptune.search.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, but got {text!r}") from None


# ----------------------------------------------------------------------------- settings


def _with_config_file(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Values from --config, overridden by the flags given on the command line."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "config")}
    if not getattr(args, "config", None):
        return given
    import yaml

    path = Path(args.config)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: not valid YAML ({_yaml_problem(exc)})") from exc
    if not isinstance(loaded, dict):
        raise UsageError(f"--config {path}: expected a mapping of option: value, got a list/scalar")
    subparser = _subparser(parser, args.command)
    actions = {a.dest: a for a in subparser._actions if a.option_strings and a.dest != "config"}
    values = {}
    for key, value in loaded.items():
        dest = str(key).lstrip("-").replace("-", "_")
        action = actions.get(dest)
        if action is None or dest == "help":
            known = ", ".join(sorted(a.replace("_", "-") for a in actions if a != "help"))
            raise UsageError(f"--config {path}: unknown key {key!r}; known keys: {known}")
        values[dest] = _coerce(path, key, value, action)
    return {**values, **given}


def _yaml_problem(exc: Exception) -> str:
    """Where and what, on one line: "line 3, column 7: expected ',' or ']', but got ..."."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or problem is None:
        return str(exc).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _coerce(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        if not isinstance(value, bool):
            raise UsageError(f"--config {path}: {key} must be true or false, but got {value!r}")
        return value
    if value is None or action.type is None:
        return value if value is None else str(value)
    try:
        return action.type(str(value))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--config {path}: {key}: {exc}") from None


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("parser has no subcommands")


def search_settings(values: dict[str, Any]):
    from poptune.data import DataSource
    from poptune.search import SearchSettings
    from poptune.search.settings import BUDGET_SAMPLE_CAP

    kwargs = {k: values[k] for k in _SEARCH_KEYS if k in values}
    kwargs.setdefault("name", time.strftime("poptune-%Y%m%d-%H%M%S"))
    if values.get("time_budget") is not None:
        kwargs.setdefault("num_samples", BUDGET_SAMPLE_CAP)
    if values.get("data"):
        source = DataSource(path=values["data"])
    else:
        # The built-in dataset stays the same whatever --seed is, so that runs with different
        # seeds differ only in split, sampler and initialisation, and compare with each other.
        synthetic = {"synthetic_rows": values.get("synthetic_rows"),
                     "synthetic_difficulty": values.get("synthetic_difficulty")}  # fmt: skip
        source = DataSource(**{k: v for k, v in synthetic.items() if v})
    return SearchSettings(data=source, **kwargs)


def analyze_settings(values: dict[str, Any]):
    from poptune.analysis.analyze import AnalyzeSettings

    return AnalyzeSettings(
        **{
            k: values[k]
            for k in (*_ANALYZE_KEYS, "data")
            if values.get(k) is not None and k in values
        }
    )


# ----------------------------------------------------------------------------- commands


def cmd_search(values: dict[str, Any]) -> int:
    from poptune import api

    settings = search_settings(values)
    try:
        experiment = api.search(settings, given=values.keys())
    except SearchInterrupted as exc:
        print(f"poptune: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _errored_code(experiment)


def _errored_code(experiment: Any) -> int:
    if not experiment.errored:
        return 0
    print(
        f"poptune: warning: {experiment.errored} trial(s) errored; their error files are in the "
        "trial folders (rerun them with --resume --retry-errored)",
        file=sys.stderr,
    )
    return EXIT_TRIALS_ERRORED


def cmd_estimate(values: dict[str, Any]) -> int:
    from poptune.api import preflight
    from poptune.data import load_source, prepare
    from poptune.estimate.predict import estimate_search

    settings = search_settings(values)
    preflight(settings)
    print(f"poptune: loading {settings.data.describe()}", flush=True)
    prepared = prepare(load_source(settings.data), seed=settings.seed, dedupe=settings.dedupe)
    print(
        f"poptune: calibrating for {settings.num_samples} trials × up to {settings.max_epochs} "
        f"epochs ({settings.scheduler}) on {len(prepared.x_train):,} training rows",
        flush=True,
    )
    estimate = estimate_search(settings, prepared)
    print(f"poptune: estimate: {estimate.summary()}")
    return 0


def cmd_run(values: dict[str, Any]) -> int:
    # Every option is checked before the search (which may take hours): the cheap search options
    # first, then the analysis ones, whose check imports the analysis stack.
    settings = search_settings(values)
    analysis = analyze_settings({k: v for k, v in values.items() if k in _ANALYZE_KEYS})
    from poptune import api

    try:
        experiment = api.run(settings, analysis, given=values.keys())
    except SearchInterrupted as exc:
        print(f"poptune: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _errored_code(experiment)  # the analysis ran on the trials that did not error


def cmd_analyze(args: argparse.Namespace) -> int:
    from poptune import api

    api.analyze(args.exp_dir, analyze_settings(vars(args)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from poptune.analysis.export import export_best_config

    written = export_best_config(args.exp_dir, args.out)
    print(written if args.out is None else f"poptune: wrote {written}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from poptune.trainables.bundle import predict_file

    rows, summary = predict_file(args.model_dir, args.data, args.out)
    print(f"poptune: {summary}")
    print(f"poptune: wrote {rows:,} predictions to {args.out}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from poptune.data import DEFAULT_ROWS, DIFFICULTIES, synthetic_tracks
    from poptune.files import write_text_atomic

    rows = args.rows if args.rows is not None else DEFAULT_ROWS
    if rows < 1:
        raise UsageError(f"--rows must be a positive integer, but got {rows}")
    if args.difficulty not in DIFFICULTIES:
        raise UsageError(
            f"--difficulty must be one of {', '.join(DIFFICULTIES)}, but got {args.difficulty!r}"
        )
    frame = synthetic_tracks(rows, args.seed, difficulty=args.difficulty)
    write_text_atomic(args.out, frame.to_csv(index=False))
    print(f"poptune: wrote {len(frame):,} synthetic rows to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere, not only before COMMAND
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command in ("run", "search", "estimate"):
            values = _with_config_file(parser, args)
            if args.command == "run":
                return cmd_run(values)
            if args.command == "estimate":
                return cmd_estimate(values)
            return cmd_search(values)
        commands = {
            "analyze": cmd_analyze,
            "export": cmd_export,
            "predict": cmd_predict,
            "synth": cmd_synth,
        }
        return commands[args.command](args)
    except UsageError as exc:
        if debug:
            raise
        print(f"poptune: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("poptune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        print(
            f"poptune: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
