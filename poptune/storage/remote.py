"""Experiments in s3://, gs:// and other pyarrow file systems: poptune's own files there, and
the local copy the analysis works on.

Tune writes its experiment state through pyarrow's file systems; poptune_search.json,
best_config.json and the analysis go the same way. The analysis reads trial histories, the
study and the data fingerprint many times over and writes plots and a model bundle, so it runs on
a local copy of the experiment (checkpoints left out: it retrains from scratch) and uploads
what it wrote. Every path is built with :func:`poptune.uri.join`, so a query string that
carries the endpoint (``?endpoint_override=host:9000&scheme=http``) stays at the end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.fs

from poptune import uri

CHECKPOINT_PREFIX = "checkpoint_"  # Tune's trial checkpoint folders


def filesystem(location: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """pyarrow's file system for ``location`` and the path inside it."""
    return pyarrow.fs.FileSystem.from_uri(location)


def write_json_uri(location: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``location``; the object appears only once the upload completes."""
    fs, path = filesystem(location)
    fs.create_dir(path.rpartition("/")[0], recursive=True)
    # allow_nan=False: a NaN in a result file is a bug to surface, not a value to store.
    data = (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8")
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def read_json_uri(location: str) -> Any:
    """The JSON document at ``location``; FileNotFoundError if there is none."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        raise FileNotFoundError(uri.shown(location))
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read().decode("utf-8"))


def holds_files(location: str) -> bool:
    """True if anything is stored under ``location`` (object stores have no empty folders)."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return False
    return bool(fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True)))


def delete(location: str) -> None:
    """Remove everything under ``location`` (``--force`` on remote storage)."""
    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def download_experiment(location: str, local: Path) -> int:
    """Mirror the experiment at ``location`` into the folder ``local`` (replaced whole), without
    trial checkpoints; return the number of files copied."""
    fs, root = filesystem(location)
    if fs.get_file_info(root).type != pyarrow.fs.FileType.Directory:
        raise FileNotFoundError(uri.shown(location))
    if local.exists():
        shutil.rmtree(local)  # a stale file of an earlier copy must not mix in
    copied = 0
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True)):
        relative = info.path[len(root) :].lstrip("/")
        if info.type != pyarrow.fs.FileType.File or _in_checkpoint(relative):
            continue
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        copied += 1
    return copied


def upload(local: Path, location: str) -> None:
    """Copy the file or folder ``local`` to ``location`` (a folder's files below it)."""
    fs, path = filesystem(location)
    if local.is_dir():
        fs.create_dir(path, recursive=True)
        pyarrow.fs.copy_files(
            str(local.resolve()),
            path,
            source_filesystem=pyarrow.fs.LocalFileSystem(),
            destination_filesystem=fs,
        )
        return
    fs.create_dir(path.rpartition("/")[0], recursive=True)
    with local.open("rb") as src, fs.open_output_stream(path) as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)


def prune_checkpoints_uri(location: str) -> int:
    """Keep only the newest checkpoint of each trial of a finished search stored at
    ``location``; return how many were removed (the remote twin of
    ``poptune.driver.experiment_files.prune_checkpoints``)."""
    fs, root = filesystem(location)
    removed = 0
    for trial in fs.get_file_info(pyarrow.fs.FileSelector(root)):
        if trial.type != pyarrow.fs.FileType.Directory:
            continue
        checkpoints = sorted(
            info.path
            for info in fs.get_file_info(pyarrow.fs.FileSelector(trial.path))
            if info.type == pyarrow.fs.FileType.Directory
            and info.base_name.startswith(CHECKPOINT_PREFIX)
        )
        for old in checkpoints[:-1]:
            fs.delete_dir(old)
            removed += 1
    return removed


def _in_checkpoint(relative: str) -> bool:
    return any(part.startswith(CHECKPOINT_PREFIX) for part in relative.split("/")[:-1])
