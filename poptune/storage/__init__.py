"""Experiments in buckets (s3://, gs:// and other pyarrow file systems): poptune's own files
there, and the local copy the analysis works on. The study a bucket experiment uploads is
:mod:`poptune.studies.remote_copy`."""
