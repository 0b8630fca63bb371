"""Data: read the Kaggle tracks CSV, generate the built-in synthetic one, prepare splits.

Names load on first use (PEP 562): a trial worker that only needs `FEATURES` then imports no
pandas, scikit-learn or scipy, which saves about a second of its start and 65 MB of its memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from poptune.data._load import LoadReport, load_tracks
    from poptune.data._prepare import DEDUPE_CHOICES, DataInfo, Prepared, prepare
    from poptune.data._schema import COLUMNS, FEATURES, ID, TARGET
    from poptune.data._source import DataSource, load_source
    from poptune.data._synthetic import DEFAULT_ROWS, DIFFICULTIES, synthetic_tracks

_MODULE_OF = {
    "COLUMNS": "_schema",
    "DEDUPE_CHOICES": "_prepare",
    "DEFAULT_ROWS": "_synthetic",
    "DIFFICULTIES": "_synthetic",
    "FEATURES": "_schema",
    "ID": "_schema",
    "TARGET": "_schema",
    "DataInfo": "_prepare",
    "DataSource": "_source",
    "LoadReport": "_load",
    "Prepared": "_prepare",
    "load_source": "_source",
    "load_tracks": "_load",
    "prepare": "_prepare",
    "synthetic_tracks": "_synthetic",
}
__all__ = [
    "COLUMNS",
    "DEDUPE_CHOICES",
    "DEFAULT_ROWS",
    "DIFFICULTIES",
    "FEATURES",
    "ID",
    "TARGET",
    "DataInfo",
    "DataSource",
    "LoadReport",
    "Prepared",
    "load_source",
    "load_tracks",
    "prepare",
    "synthetic_tracks",
]


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
