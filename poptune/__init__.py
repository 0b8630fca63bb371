"""poptune: Ray Tune + Optuna search for small MLPs that predict Spotify track popularity.

From Python (docs/python-api.md)::

    import poptune

    experiment = poptune.run(poptune.SearchSettings(num_samples=8, name="try"))
    experiment.best_config, experiment.trials, experiment.metrics

Names load on first use (PEP 562): ``import poptune`` imports neither torch, Ray nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poptune.lazy import lazy_names

__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from poptune.analysis.settings import AnalyzeSettings as AnalyzeSettings
    from poptune.api import analyze as analyze
    from poptune.api import load as load
    from poptune.api import run as run
    from poptune.api import search as search
    from poptune.data import DataSource as DataSource
    from poptune.driver.settings import SearchSettings as SearchSettings
    from poptune.errors import PoptuneError as PoptuneError
    from poptune.errors import SearchInterrupted as SearchInterrupted
    from poptune.errors import UsageError as UsageError
    from poptune.experiment import Experiment as Experiment

__getattr__, __dir__, __all__ = lazy_names(
    __name__,
    {
        "poptune.analysis.settings": ("AnalyzeSettings",),
        "poptune.api": ("analyze", "load", "run", "search"),
        "poptune.data": ("DataSource",),
        "poptune.errors": ("PoptuneError", "SearchInterrupted", "UsageError"),
        "poptune.experiment": ("Experiment",),
        "poptune.driver.settings": ("SearchSettings",),
    },
)
__all__ = ["__version__", *__all__]
