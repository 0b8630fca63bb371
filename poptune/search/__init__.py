"""Running the search: settings, the Ray Tune runner, the searcher and scheduler, callbacks.

This package is also the function ``poptune.search(settings)`` (see :func:`poptune.api.search`):
a package named ``search`` would shadow a function of that name on ``poptune`` as soon as it is
imported, so the package itself is made callable.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from poptune.search.settings import SCHEDULERS, SearchSettings

if TYPE_CHECKING:
    from poptune.experiment import Experiment

__all__ = ["SCHEDULERS", "SearchSettings"]


class _CallableModule(types.ModuleType):
    def __call__(self, settings: SearchSettings, **kwargs: Any) -> Experiment:
        """Run (or resume) a search: :func:`poptune.api.search`."""
        from poptune.api import search

        return search(settings, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
