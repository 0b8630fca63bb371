"""The search's driver: a search run on Ray Tune, from its settings to its finished experiment.

- ``settings``: ``SearchSettings``, every option of a search; ``resources``: what a trial asks for;
- ``runner``: ``run_search``, the orchestrator; ``tuner`` and ``tune_config``: Tune's ``Tuner``, the
  trainable, searcher and scheduler it runs; ``experiment_files``, ``resume``: the experiment's own
  files, and continuing one;
- the Tune plug-ins: ``searcher`` (Optuna's TPE behind Tune's searcher API), ``scheduling`` (ASHA),
  ``progress``, ``tensorboard``, ``trial_logs``, ``finished`` (callbacks);
- what stops a search cleanly: ``signals`` (SIGINT, SIGTERM, SIGUSR1), ``disk_full``.

The samplers are Optuna's alone (``poptune.samplers``), the study the search writes is
``poptune.studies``; the function that runs a search is ``poptune.search``
(:func:`poptune.api.search`).
"""
