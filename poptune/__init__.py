"""poptune: Ray Tune + Optuna search for small MLPs that predict Spotify track popularity.

From Python (docs/python-api.md)::

    import poptune
    from poptune.search.settings import SearchSettings

    experiment = poptune.run(SearchSettings(num_samples=8, name="try"))
    experiment.best_config, experiment.trials, experiment.metrics

Names load on first use (PEP 562): ``import poptune`` imports neither torch, Ray nor pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from poptune import search
    from poptune.analysis.analyze import AnalyzeSettings
    from poptune.api import analyze, load, run
    from poptune.data import DataSource
    from poptune.errors import PoptuneError, SearchInterrupted, UsageError
    from poptune.experiment import Experiment
    from poptune.search.settings import SearchSettings

_MODULE_OF = {
    "run": "poptune.api",
    "analyze": "poptune.api",
    "load": "poptune.api",
    "Experiment": "poptune.experiment",
    "SearchSettings": "poptune.search.settings",
    "AnalyzeSettings": "poptune.analysis.analyze",
    "DataSource": "poptune.data",
    "PoptuneError": "poptune.errors",
    "UsageError": "poptune.errors",
    "SearchInterrupted": "poptune.errors",
}
__all__ = [
    "AnalyzeSettings",
    "DataSource",
    "Experiment",
    "PoptuneError",
    "SearchInterrupted",
    "SearchSettings",
    "UsageError",
    "__version__",
    "analyze",
    "load",
    "run",
    "search",
]


def __getattr__(name: str) -> object:
    if name == "search":
        # The subpackage poptune.search, which is callable: poptune.search(settings) runs a
        # search (the subpackage would shadow a function of that name once imported).
        return importlib.import_module("poptune.search")
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
