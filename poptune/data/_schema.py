"""Column names and value ranges of the Kaggle *Ultimate Spotify Tracks Database* file, and the
data choices settings offer (importable without pandas: option parsing and --help use them)."""

DEDUPE_CHOICES = ("track_id", "none")
SYNTHETIC_DIFFICULTIES = ("easy", "real")  # the built-in data's levels (see _synthetic)
DEFAULT_ROWS = 30_000  # built-in data rows by default

FEATURES: tuple[str, ...] = (
    "acousticness",
    "danceability",
    "duration_ms",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "speechiness",
    "tempo",
    "valence",
)
TARGET = "popularity"
ID = "track_id"

COLUMNS: tuple[str, ...] = (
    "genre",
    "artist_name",
    "track_name",
    "track_id",
    "popularity",
    "acousticness",
    "danceability",
    "duration_ms",
    "energy",
    "instrumentalness",
    "key",
    "liveness",
    "loudness",
    "mode",
    "speechiness",
    "tempo",
    "time_signature",
    "valence",
)

# Valid ranges (inclusive) from Spotify's audio-feature documentation. A value outside them is a
# broken row, not an outlier: it is dropped and counted. None means unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "acousticness": (0.0, 1.0),
    "danceability": (0.0, 1.0),
    "duration_ms": (1.0, None),
    "energy": (0.0, 1.0),
    "instrumentalness": (0.0, 1.0),
    "liveness": (0.0, 1.0),
    "loudness": (None, 10.0),
    "speechiness": (0.0, 1.0),
    "tempo": (0.0, None),
    "valence": (0.0, 1.0),
    "popularity": (0.0, 100.0),
}
