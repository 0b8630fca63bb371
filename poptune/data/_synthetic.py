"""The built-in dataset: a synthetic stand-in for the Kaggle file, same columns and dtypes.

Features come from a Gaussian copula: correlated normal latents pushed through each feature's
marginal (U-shaped acousticness, zero-heavy instrumentalness, long-tailed duration, ...), so the
pairwise correlations of the Kaggle file hold (energy~loudness ≈ +0.82, acousticness~energy
≈ -0.73, danceability~valence ≈ +0.55; popularity ≈ +0.36 with loudness, -0.38 with
acousticness). Popularity (mean ≈ 41, std ≈ 18, 0-100) mixes a linear signal, non-linear terms
(an interaction, a sweet spot in duration, a loudness threshold) and noise, then a few
"forgotten" tracks at zero, so a linear model, a tree and the four MLP families rank differently.
The constants below were calibrated once against those figures; tests/test_synthetic.py checks
them. Every row is labelled synthetic: its genre starts with "Synthetic".

Two difficulties share the features and differ only in how much of popularity is noise:
``"easy"`` (the default: R² ≈ 0.26 for least squares, ≈ 0.51 for gradient-boosted trees, so a
short demo shows clear differences) and ``"real"``, calibrated to what the same baselines reach
on a 20k-track sample of the Kaggle file (R² ≈ 0.15 and ≈ 0.27): the one to judge a search by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from poptune.data._schema import COLUMNS, DEFAULT_ROWS, FEATURES, SYNTHETIC_DIFFICULTIES

# Latent correlation of the features, in FEATURES order. Calibrated so that, after the marginal
# transforms, energy~loudness ≈ 0.82, acousticness~energy ≈ -0.73, danceability~valence ≈ 0.55.
_LATENT_CORR = np.array(
    [
        # acou  dance  dur   energ  instr  live   loud   speech tempo  val
        [1.00, -0.35, 0.00, -0.78, 0.20, -0.05, -0.68, -0.05, -0.22, -0.20],  # acousticness
        [-0.35, 1.00, -0.12, 0.33, -0.30, -0.06, 0.45, 0.15, 0.00, 0.58],  # danceability
        [0.00, -0.12, 1.00, 0.00, 0.08, 0.00, -0.05, -0.05, 0.00, -0.12],  # duration_ms
        [-0.78, 0.33, 0.00, 1.00, -0.30, 0.20, 0.86, 0.12, 0.23, 0.42],  # energy
        [0.20, -0.30, 0.08, -0.30, 1.00, -0.10, -0.45, -0.15, -0.10, -0.30],  # instrumentalness
        [-0.05, -0.06, 0.00, 0.20, -0.10, 1.00, 0.05, 0.45, 0.00, 0.02],  # liveness
        [-0.68, 0.45, -0.05, 0.86, -0.45, 0.05, 1.00, 0.00, 0.22, 0.38],  # loudness
        [-0.05, 0.15, -0.05, 0.12, -0.15, 0.45, 0.00, 1.00, 0.00, 0.03],  # speechiness
        [-0.22, 0.00, 0.00, 0.23, -0.10, 0.00, 0.22, 0.00, 1.00, 0.12],  # tempo
        [-0.20, 0.58, -0.12, 0.42, -0.30, 0.02, 0.38, 0.03, 0.12, 1.00],  # valence
    ]
)
# Weights of the linear part of popularity on the standardised latents (FEATURES order).
_LINEAR_WEIGHTS = np.array(
    [-0.675, 0.242, 0.377, -0.672, -0.308, -0.165, 0.732, -0.277, -0.007, -0.215]
)


@dataclass(frozen=True)
class _Signal:
    """How popularity is made of its parts: score = linear·(z·w) + nonlinear·g(z) + noise·ε,
    popularity = 41.5 + points·score, rounded and clipped to 0-100."""

    linear: float
    nonlinear: float
    noise: float
    points: float


DIFFICULTIES: dict[str, _Signal] = {
    "easy": _Signal(linear=1.0, nonlinear=0.55, noise=1.05, points=10.5),
    # Less signal, more noise, fewer points per unit of score: the same spread (std ≈ 18).
    "real": _Signal(linear=0.9, nonlinear=0.45, noise=1.6, points=8.9),
}
assert tuple(DIFFICULTIES) == SYNTHETIC_DIFFICULTIES
_ZERO_SHARE = 0.02  # tracks nobody streams: popularity 0 whatever they sound like
_DUPLICATE_SHARE = 0.24  # 232,725 rows, 176,774 distinct tracks in the Kaggle file

_GENRES = (
    "Pop", "Rap", "Rock", "Hip-Hop", "Dance", "Indie", "Children's Music", "R&B", "Alternative",
    "Folk", "Soul", "Country", "Jazz", "Reggaeton", "Reggae", "Electronic", "Blues", "World",
    "Classical", "Ska", "Anime", "Soundtrack", "Opera", "Comedy", "Movie", "A Capella",
)  # fmt: skip
_KEYS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_TIME_SIGNATURES = ("4/4", "3/4", "5/4", "1/4", "0/4")
_TIME_SIGNATURE_P = (0.86, 0.10, 0.025, 0.0149, 0.0001)
_BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))


def synthetic_tracks(
    rows: int = DEFAULT_ROWS, seed: int = 0, *, difficulty: str = "easy"
) -> pd.DataFrame:
    """A deterministic synthetic tracks table with the Kaggle file's columns and dtypes.

    ``difficulty`` is ``"easy"`` or ``"real"`` (as noisy as the Kaggle file; see above).
    """
    if rows < 1:
        raise ValueError(f"rows must be a positive integer, but got {rows}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(
            f"difficulty must be one of {', '.join(DIFFICULTIES)}, but got {difficulty!r}"
        )
    rng = np.random.default_rng(seed)
    n_unique = max(1, round(rows * (1 - _DUPLICATE_SHARE)))
    latent = rng.multivariate_normal(np.zeros(len(FEATURES)), _LATENT_CORR, size=n_unique)
    features = _marginals(latent)
    popularity = _popularity(latent, rng, DIFFICULTIES[difficulty])
    tracks = pd.DataFrame(features)
    tracks.insert(0, "popularity", popularity)
    tracks.insert(0, "track_id", _track_ids(rng, n_unique))
    tracks.insert(0, "track_name", [f"Synthetic track {i}" for i in range(n_unique)])
    tracks.insert(
        0,
        "artist_name",
        [f"Synthetic artist {i}" for i in rng.integers(0, n_unique // 4 + 1, n_unique)],
    )
    tracks.insert(0, "genre", rng.choice(_GENRES, n_unique))
    tracks["key"] = rng.choice(_KEYS, n_unique)
    tracks["mode"] = np.where(rng.random(n_unique) < 0.65, "Major", "Minor")
    tracks["time_signature"] = rng.choice(_TIME_SIGNATURES, n_unique, p=_TIME_SIGNATURE_P)
    tracks = pd.concat([tracks, _genre_copies(tracks, rows - n_unique, rng)], ignore_index=True)
    tracks = tracks.iloc[rng.permutation(len(tracks))].reset_index(drop=True)
    tracks["genre"] = "Synthetic " + tracks["genre"]
    return tracks[list(COLUMNS)]


def _marginals(z: np.ndarray) -> dict[str, np.ndarray]:
    u = stats.norm.cdf(z)
    col = {name: u[:, i] for i, name in enumerate(FEATURES)}
    instr_u = col["instrumentalness"]
    instrumentalness = np.where(
        instr_u < 0.55,
        0.0,
        np.where(
            instr_u < 0.75,
            10 ** (-6 + 4 * (instr_u - 0.55) / 0.20),  # tiny values, written as 7.25E-06
            0.01 + 0.99 * stats.beta.ppf((instr_u - 0.75) / 0.25, 1.2, 0.8),
        ),
    )
    duration = np.exp(np.log(215_000) + 0.30 * stats.t.ppf(col["duration_ms"], df=3))
    return {
        "acousticness": np.round(stats.beta.ppf(col["acousticness"], 0.45, 0.75), 6),
        "danceability": np.round(stats.beta.ppf(col["danceability"], 4.5, 3.7), 3),
        "duration_ms": np.clip(duration, 15_387, 5_552_917).round().astype(np.int64),
        "energy": np.round(stats.beta.ppf(col["energy"], 1.9, 1.5), 3),
        "instrumentalness": np.round(instrumentalness, 8),
        "liveness": np.round(np.clip(np.exp(np.log(0.13) + 0.6 * z[:, 5]), 0.0097, 1.0), 4),
        "loudness": np.round(
            np.maximum(-1.0 - stats.gamma.ppf(1 - col["loudness"], 2.2, scale=3.9), -52.5), 3
        ),
        "speechiness": np.round(np.clip(np.exp(np.log(0.05) + 0.8 * z[:, 7]), 0.0222, 0.967), 4),
        "tempo": np.round(np.clip(117 + 31 * z[:, 8], 30.4, 242.9), 3),
        "valence": np.round(stats.beta.ppf(col["valence"], 1.8, 2.0), 3),
    }


def expected_popularity(
    rows: int = DEFAULT_ROWS, seed: int = 0, *, difficulty: str = "easy"
) -> pd.Series:
    """The best prediction any model could make of each track of ``synthetic_tracks(rows, seed,
    difficulty)``: popularity's expectation given the track's features, indexed by track_id.

    Its error on a split is the noise floor of that split: how far from perfect a model is, as
    opposed to how far from another model. The benchmarks report it next to every RMSE.
    """
    rng = np.random.default_rng(seed)
    n_unique = max(1, round(rows * (1 - _DUPLICATE_SHARE)))
    latent = rng.multivariate_normal(np.zeros(len(FEATURES)), _LATENT_CORR, size=n_unique)
    signal = DIFFICULTIES[difficulty]
    rng.standard_normal(n_unique)  # the noise and the zero share, drawn as synthetic_tracks does
    rng.random(n_unique)
    ids = _track_ids(rng, n_unique)
    # E over the noise (Gauss-Hermite, 60 nodes) of the rounded, clipped score, times the share
    # of tracks that are not "forgotten" at zero.
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    base = 41.5 + signal.points * _signal(latent, signal)
    values = np.clip(np.round(base[:, None] + signal.points * signal.noise * nodes), 0, 100)
    return pd.Series((1 - _ZERO_SHARE) * (values @ weights), index=ids, name="expected")


def _signal(z: np.ndarray, signal: _Signal) -> np.ndarray:
    """The part of a track's score that its features decide (everything but the noise)."""
    i = {name: k for k, name in enumerate(FEATURES)}
    linear = z @ _LINEAR_WEIGHTS
    # Even functions of the latents: invisible to a correlation (and to a linear model), learnable
    # by an MLP or a tree. Danceable *and* energetic tracks are hits; very long or very short ones
    # are not; quiet acoustic tracks only sell when they are also instrumental-free.
    nonlinear = (
        0.9 * z[:, i["danceability"]] * z[:, i["energy"]]
        - 0.6 * (z[:, i["duration_ms"]] ** 2 - 1)
        + 0.5 * np.tanh(2 * z[:, i["loudness"]]) * np.sign(z[:, i["speechiness"]])
        - 0.5 * (np.abs(z[:, i["acousticness"]] - z[:, i["instrumentalness"]]) - 0.8)
    )
    return signal.linear * linear + signal.nonlinear * nonlinear


def _popularity(z: np.ndarray, rng: np.random.Generator, signal: _Signal) -> np.ndarray:
    score = _signal(z, signal) + signal.noise * rng.standard_normal(len(z))
    popularity = np.clip(np.round(41.5 + signal.points * score), 0, 100)
    popularity[rng.random(len(z)) < _ZERO_SHARE] = 0
    return popularity.astype(np.int64)


def _track_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    chars = _BASE62[rng.integers(0, len(_BASE62), size=(n, 22))]
    return np.array(["".join(row) for row in chars])


def _genre_copies(tracks: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """The Kaggle file lists a track once per genre: same id and features, another genre."""
    if n <= 0:
        return tracks.iloc[:0]
    source = rng.integers(0, len(tracks), n)
    copies = tracks.iloc[source].copy()
    # Another genre than the original's, and a different one for each copy of the same track
    # (the k-th copy moves k steps further round the genre list), so no row repeats exactly.
    genre_index = pd.Series(_GENRES).reset_index().set_index(0)["index"]
    original = genre_index[copies["genre"]].to_numpy()
    nth_copy = pd.Series(source).groupby(source).cumcount().to_numpy()
    step = 1 + (rng.integers(0, len(_GENRES) - 1, len(tracks))[source] + nth_copy) % (
        len(_GENRES) - 1
    )
    copies["genre"] = np.asarray(_GENRES)[(original + step) % len(_GENRES)]
    # "Nearly always" identical popularity: about 1 copy in 100 was scraped a day apart.
    drift = (rng.random(n) < 0.01) * rng.choice([-1, 1], n)
    copies["popularity"] = np.clip(copies["popularity"] + drift, 0, 100)
    return copies
