"""Test error by popularity band: one RMSE hides that a regressor to the mean misses the hits.

Bands are half-open [lo, hi) except the last, which includes 100.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from poptune.metric import clip_popularity

BANDS: tuple[tuple[int, int], ...] = ((0, 10), (10, 30), (30, 50), (50, 70), (70, 100))


@dataclass(frozen=True)
class BandError:
    label: str
    n: int
    rmse: float | None  # None for an empty band
    mae: float | None
    bias: float | None  # mean(prediction − actual): < 0 means the band is under-predicted

    def to_dict(self) -> dict:
        return asdict(self)


def band_errors(y_true: np.ndarray, y_pred: np.ndarray) -> list[BandError]:
    y = np.asarray(y_true, dtype=np.float64)
    err = clip_popularity(np.asarray(y_pred, dtype=np.float64)) - y
    out = []
    for i, (lo, hi) in enumerate(BANDS):
        last = i == len(BANDS) - 1
        mask = (y >= lo) & ((y <= hi) if last else (y < hi))
        e = err[mask]
        if e.size == 0:
            out.append(BandError(f"{lo}–{hi}", 0, None, None, None))
            continue
        out.append(
            BandError(
                label=f"{lo}–{hi}",
                n=int(e.size),
                rmse=float(np.sqrt(np.mean(e**2))),
                mae=float(np.mean(np.abs(e))),
                bias=float(np.mean(e)),
            )
        )
    return out
