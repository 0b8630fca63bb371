"""Data: read the Kaggle tracks CSV, generate the built-in synthetic one, prepare splits.

Names load on first use (PEP 562): a trial worker that only needs `FEATURES` then imports no
pandas, scikit-learn or scipy, which saves about a second of its start and 65 MB of its memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from poptune.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below loads them
    from poptune.data._load import LoadReport as LoadReport
    from poptune.data._load import load_tracks as load_tracks
    from poptune.data._prepare import DataInfo as DataInfo
    from poptune.data._prepare import Prepared as Prepared
    from poptune.data._prepare import prepare as prepare
    from poptune.data._schema import COLUMNS as COLUMNS
    from poptune.data._schema import DEDUPE_CHOICES as DEDUPE_CHOICES
    from poptune.data._schema import DEFAULT_ROWS as DEFAULT_ROWS
    from poptune.data._schema import FEATURES as FEATURES
    from poptune.data._schema import ID as ID
    from poptune.data._schema import TARGET as TARGET
    from poptune.data._source import DataSource as DataSource
    from poptune.data._source import load_source as load_source
    from poptune.data._synthetic import DIFFICULTIES as DIFFICULTIES
    from poptune.data._synthetic import synthetic_tracks as synthetic_tracks

__getattr__, __dir__, __all__ = lazy_names(
    __name__,
    {
        "._load": ("LoadReport", "load_tracks"),
        "._prepare": ("DataInfo", "Prepared", "prepare"),
        "._schema": ("COLUMNS", "DEDUPE_CHOICES", "DEFAULT_ROWS", "FEATURES", "ID", "TARGET"),
        "._source": ("DataSource", "load_source"),
        "._synthetic": ("DIFFICULTIES", "synthetic_tracks"),
    },
)
