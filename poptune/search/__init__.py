"""Search: settings, the Ray Tune runner, and the cluster connection."""

from poptune.search.settings import SCHEDULERS, SearchSettings

__all__ = ["SCHEDULERS", "SearchSettings"]
