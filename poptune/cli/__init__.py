"""`poptune` command line: parse → settings objects → calls; errors → one line and an exit code.

:mod:`~poptune.cli.parser` builds the parser from the settings classes' fields;
:mod:`~poptune.cli.commands` turns the parsed options into settings and API calls.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 1 unexpected
internal error (traceback with --debug); 3 the search finished but some trials errored;
130 interrupted (the experiment is saved: resume it with --resume).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from poptune.cli.commands import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, run_command
from poptune.cli.parser import build_parser
from poptune.errors import UsageError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere, not only before COMMAND
    try:
        parser = build_parser(only=argv[0] if argv else "")
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return run_command(args)
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
