"""What each `poptune` command does: option values → settings objects → calls to
:mod:`poptune.api`, and the exit code."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from poptune.cli.parser import analysis_options, option_values
from poptune.errors import UsageError
from poptune.options import options_of

EXIT_USAGE, EXIT_INTERNAL, EXIT_TRIALS_ERRORED, EXIT_DISK_FULL, EXIT_INTERRUPTED = 2, 1, 3, 4, 130


def run_command(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; the search commands take their options merged with
    those of --config."""
    searches = {"run": cmd_run, "search": cmd_search, "estimate": cmd_estimate}
    if args.command in searches:
        return searches[args.command](option_values(args))
    others = {"analyze": cmd_analyze, "export": cmd_export, "predict": cmd_predict,
              "synth": cmd_synth}  # fmt: skip
    return others[args.command](args)


# ----------------------------------------------------------------------------- settings


def search_settings(values: dict[str, Any]):
    from poptune.data import DataSource
    from poptune.driver.settings import SearchSettings

    kwargs = {o.name: values[o.name] for o in options_of(SearchSettings) if o.name in values}
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
    from poptune.analysis.settings import AnalyzeSettings

    names = [o.name for o in options_of(AnalyzeSettings)]
    return AnalyzeSettings(**{k: values[k] for k in names if values.get(k) is not None})


def cmd_search(values: dict[str, Any]) -> int:
    from poptune import api

    settings = search_settings(values)
    # An interrupt or a full disk is answered by main(), with the command that continues.
    experiment = api.search(settings, given=values.keys())
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
    from poptune.estimate.forecast import estimate_search

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
    names = {o.name for o in analysis_options()}
    analysis = analyze_settings({k: v for k, v in values.items() if k in names})
    from poptune import api

    experiment = api.run(settings, analysis, given=values.keys())
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
