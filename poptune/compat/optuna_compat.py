"""Optuna's private names, reached from here only (see :mod:`poptune.compat`).

What uses them, and the public path each falls back to:

- the windowed, batched TPE (``poptune.samplers``: TPE's ``default_gamma``, ``_split_trials``,
  its Parzen estimators' kernels, ``Study._get_trials`` and ``TPESampler``'s private steps) →
  Optuna's own ``TPESampler`` with the same settings;
- the single-writer cached storage of ``--study-storage`` (``studies/database.py``:
  ``_CachedStorage``) → Optuna's ``RDBStorage``;
- the study copy written in bulk into Optuna's tables (``studies/study_file.py`` and
  ``studies/rows.py``: the models of ``optuna.storages._rdb``) → the study rewritten
  through Optuna's public API at each save.
"""

from __future__ import annotations

import optuna

from poptune.compat import major_minor, off_reason, public_paths_forced, warn_once

# The Optuna releases (major, minor) whose private code the fast paths were written against:
# batch_tpe.py copies a method of 5.0's TPESampler, and tests/test_batch_tpe.py guards it.
WRITTEN_FOR = ((5, 0),)

try:
    from optuna.samplers._tpe import probability_distributions
    from optuna.samplers._tpe import sampler as tpe_sampler
    from optuna.samplers._tpe.sampler import default_gamma
    from optuna.storages._cached_storage import _CachedStorage as CachedStorage
    from optuna.storages._cached_storage import _StudyInfo as StudyInfo
    from optuna.storages._rdb import models as rdb_models

    _missing: str | None = None
except ImportError as exc:  # a later Optuna moved them: the public paths below are taken
    probability_distributions = tpe_sampler = default_gamma = rdb_models = StudyInfo = None  # type: ignore[assignment]
    # A base that defines every storage method, so that subclasses here still import.
    CachedStorage = optuna.storages.BaseStorage  # type: ignore[assignment,misc]
    _missing = str(exc)


def installed_version() -> tuple[int, int]:
    return major_minor(optuna.__version__)


def fast_paths() -> bool:
    """True when the private names can be used: they import, and this Optuna is one they were
    written for. Otherwise False, and one warning says which Optuna runs on the public paths."""
    if _missing is not None and not public_paths_forced():
        reason = f"Optuna {optuna.__version__} lacks a private name poptune uses ({_missing})"
    else:
        reason = off_reason("Optuna", optuna.__version__, WRITTEN_FOR)
    if reason is None:
        return True
    warn_once(
        "optuna",
        f"{reason}; using Optuna's own TPESampler and storage API (the same search, slower "
        "per suggestion at thousands of trials)",
    )
    return False


def rdb_storage_of(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The database storage behind ``study`` (Optuna wraps an ``RDBStorage`` in its private
    cache, and a study keeps its storage in a private attribute), or None for a study in memory.
    No public accessor exists: outside the Optuna these names were written for (one warning,
    :func:`fast_paths`), or on one that renamed either, this is None too, and the caller keeps
    the database's default settings."""
    if not fast_paths():
        return None
    storage = getattr(study, "_storage", None)
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None
