"""The analysis step, `poptune analyze`: a finished search in, metrics.json, report and model out.

Start at ``analyze``, the one orchestrator: it calls the rest in order. Its options are
``settings.AnalyzeSettings`` (light: the command line parses them without importing torch).

- ``results``: the trials as Tune recorded them, and the views the analysis picks from;
- ``retrain``: configs retrained with several seeds, each once, shared through one pool;
- ``finalists``: the finalists (the first is the winner) and the per-family table;
- ``baselines``: mean, least squares, HGB and the reference MLP, on the same test rows;
- ``config_ensemble``: ``--ensemble K``, compared with the winner seed by seed;
- ``profile``: test error by popularity band, correlations and partial dependence;
- ``importance``: hyperparameter importance per family, from the search's Optuna study;
- ``metrics``: the keys of metrics.json;
- ``export``: best_config.json, and `poptune export`;
- ``report/``: report.md, report.html, plots/ and what the terminal shows.

The model bundle the analysis writes, and `poptune predict` reads, is
:mod:`poptune.trainables.bundle`.
"""
