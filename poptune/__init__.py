"""poptune: Ray Tune + Optuna search for small MLPs that predict Spotify track popularity."""

__version__ = "0.1.0"
