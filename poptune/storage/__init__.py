"""Where an experiment's files are: ``location`` (one object for a folder or a bucket URI, over
pyarrow's file systems, through which every file of an experiment is read and written) and
``atomic_fs`` (the local file system Tune writes a local experiment through, each file whole or
absent). The study a bucket experiment uploads is :mod:`poptune.studies.remote_copy`."""
