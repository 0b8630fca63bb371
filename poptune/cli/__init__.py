"""`poptune` command line: parse → settings objects → calls; errors → one line and an exit code.

:mod:`~poptune.cli.parser` builds the parser from the settings classes' fields;
:mod:`~poptune.cli.commands` turns the parsed options into settings and API calls.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 1 unexpected
internal error (traceback with --debug); 3 the search finished but some trials errored; 4 the
disk under the experiment is full (the experiment is saved: free space, then run the command
the message ends with); 130 interrupted by Ctrl-C, SIGTERM or SIGUSR1, at any phase (what was
written is saved; the command printed continues it).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from poptune.cli.commands import (
    EXIT_DISK_FULL,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    run_command,
)
from poptune.cli.parser import build_parser
from poptune.driver.disk_full import is_disk_full
from poptune.driver.signals import sigterm_as_sigint
from poptune.errors import DiskFull, Interrupted, UsageError

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
        # SIGTERM (pre-emption, `docker stop`) and SIGUSR1 (SLURM's warning) stop any phase of
        # the command as Ctrl-C does: saved, exit 130, and the command that continues it.
        with sigterm_as_sigint():
            return run_command(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"poptune: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as exc:
        message = str(exc)
        if not exc.saved:
            message += f". Start it again with:\n  {_same_command(argv)}"
        print(f"poptune: {message}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("poptune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DiskFull as exc:
        if debug:
            raise
        message = str(exc)
        if not exc.saved:
            message += f" with: {_same_command(argv)}"
        print(f"poptune: error: {message}", file=sys.stderr)
        return EXIT_DISK_FULL
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, OSError) and is_disk_full(exc):  # a file of `export`, `synth`, …
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"poptune: error: {where}the disk is full ({exc.strerror}); free space and "
                  "run the command again", file=sys.stderr)  # fmt: skip
            return EXIT_DISK_FULL
        print(
            f"poptune: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the "
            "traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _same_command(argv: Sequence[str]) -> str:
    """The command as it was run: where nothing was saved to resume, it starts the job again."""
    return shlex.join(["poptune", *argv])
