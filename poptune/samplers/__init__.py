"""Optuna samplers (no Ray): Optuna's TPE made cheaper at thousands of trials, the same search.

- ``window``: ``WindowedSampler``, TPE shown a bounded window of the study;
- ``batch_tpe``: ``BatchTPESampler``, a few suggestions from each fit while many trials run;
- ``parzen``, ``truncnorm``: TPE's candidates drawn and scored with Φ and log Φ in C;
- ``remembered_params``: each trial's params in TPE's form, worked out once.

They reach Optuna's private names through :mod:`poptune.compat.optuna_compat`, and outside the
Optuna they were written for the search uses Optuna's own ``TPESampler`` instead.
"""
