"""Data: read the Kaggle tracks CSV, generate the built-in synthetic one, prepare splits."""

from poptune.data._load import LoadReport, load_tracks
from poptune.data._prepare import DEDUPE_CHOICES, DataInfo, Prepared, prepare
from poptune.data._schema import COLUMNS, FEATURES, ID, TARGET
from poptune.data._source import DataSource, load_source
from poptune.data._synthetic import DEFAULT_ROWS, synthetic_tracks

__all__ = [
    "COLUMNS",
    "DEDUPE_CHOICES",
    "DEFAULT_ROWS",
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
