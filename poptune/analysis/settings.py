"""The settings of the analysis step: each field is also an option of `poptune analyze` and
`poptune run`. Kept apart from the analysis itself, so parsing options imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from poptune.errors import UsageError
from poptune.options import integer, option


@dataclass(frozen=True)
class AnalyzeSettings:
    """Each field is also an option of `poptune analyze` (`poptune run` takes all but --data)."""

    seeds: int = option(
        3, parse=integer, metavar="K", help="retrain each finalist K times (default 3)"
    )
    # The top configs, plus each family's best, are re-evaluated with `seeds` seeds each.
    finalists: int = option(
        3,
        parse=integer,
        metavar="K",
        help="re-evaluate the top K configs (and each family's best) and choose the winner by "
        "mean validation error (default 3)",
    )
    ensemble: int = option(
        0, parse=integer, metavar="K", help="also average the top-K distinct configs (default: off)"
    )
    data: str | None = option(  # overrides the searched data path (the file moved)
        None, metavar="PATH", help="the searched CSV, if it moved since the search (sha256-checked)"
    )
    out: str | None = option(  # None: <experiment>/analysis
        None, metavar="DIR", help="analysis output dir (default: EXP_DIR/analysis)"
    )

    def __post_init__(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise UsageError(f"--seeds must be a positive integer, but got {self.seeds!r}")
        if not isinstance(self.finalists, int) or self.finalists < 1:
            raise UsageError(f"--finalists must be a positive integer, but got {self.finalists!r}")
        if not isinstance(self.ensemble, int) or self.ensemble < 0:
            raise UsageError(f"--ensemble must be >= 0, but got {self.ensemble!r}")
