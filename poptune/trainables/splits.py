"""What `fit` reads from the data: the training and validation arrays, nothing else.

`poptune.data.Prepared` has them (and the test split and the fitted scaler besides), so `fit`
takes either. A search ships `TrainingData` to its trials: a worker that unpickles it imports no
scikit-learn (the scaler's) and holds no test rows it never uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Splits(Protocol):
    @property
    def x_train(self) -> np.ndarray: ...
    @property
    def y_train(self) -> np.ndarray: ...
    @property
    def x_val(self) -> np.ndarray: ...
    @property
    def y_val(self) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @classmethod
    def of(cls, splits: Splits) -> TrainingData:
        return cls(splits.x_train, splits.y_train, splits.x_val, splits.y_val)
