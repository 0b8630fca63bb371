"""Optuna samplers (no Ray): Optuna's TPE made cheaper at thousands of trials, the same search.

- ``window``: ``WindowedSampler``, TPE shown a bounded window of the study;
- ``batch_tpe``: ``BatchTPESampler``, a few suggestions from each fit while many trials run;
- ``fast_tpe``: TPE's scoring and its trials' params in TPE's form, computed once.

They reach Optuna's private names through :mod:`poptune.compat.optuna_compat`, and outside the
Optuna they were written for the search uses Optuna's own ``TPESampler`` instead.
"""
