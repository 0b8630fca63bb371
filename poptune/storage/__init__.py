"""Experiments in buckets (s3://, gs:// and other pyarrow file systems): poptune's own files
there, the local copy the analysis works on, and the Optuna study saved beside them."""
