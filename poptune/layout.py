"""The names of the files poptune writes into an experiment directory, defined once."""

SEARCH_FILE = "poptune_search.json"  # settings, data fingerprint and wall time of the search
STUDY_FILE = "optuna_study.db"  # the Optuna study (SQLite) when storage is local
BEST_CONFIG_FILE = "best_config.json"
ANALYSIS_DIR = "analysis"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
REPORT_HTML_FILE = "report.html"  # report.md with its plots embedded: one file to share
PLOTS_DIR = "plots"  # PNG figures of the report, inside the analysis dir
MODEL_DIR = "model"
