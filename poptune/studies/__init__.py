"""The Optuna study a search writes, and the copy of it an experiment keeps.

- ``study_file``: ``StudyFile``, the in-memory study copied into the experiment's
  optuna_study.db at each save; ``rows``: Optuna's schema as the rows it inserts;
- ``database``: a study in a database (``--study-storage``) written by one driver;
- ``remote_copy``: the study of a search in a bucket, uploaded as its optuna_study.db.
"""
