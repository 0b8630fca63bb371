"""A local pyarrow file system whose files are whole or absent, for Tune to write a local
experiment through.

Tune copies its state into the experiment (experiment_state-*.json, searcher-state-*.pkl,
tuner.pkl, each trial's result.json), and each trial its checkpoints, with pyarrow's
``copy_files``, which on a local disk opens the target, truncating it, and writes it in place.
When the disk fills mid-copy, the file is left cut short and its previous content is gone: a
full disk turned the experiment state --resume needs into invalid JSON. Through this file system
every file is written to a temporary file beside its target and renamed over it once complete
(as :mod:`poptune.files` writes poptune's own), so a failed write leaves the previous version,
whole, and no temporary file behind; a resume then continues from the last state that was saved
in full, as after a crash.

Everything but writing a file is passed to pyarrow's own LocalFileSystem. Trials write
checkpoints through it from their worker processes: it pickles as its class alone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path

import pyarrow
import pyarrow.fs


class _AtomicFile:
    """The file object pyarrow writes into: a temporary file beside ``path``, renamed over it by
    :meth:`close`. A failed write removes the temporary file at once (pyarrow then drops the
    stream without closing it)."""

    def __init__(self, path: str) -> None:
        target = Path(path)
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        # mkstemp creates 0600; the file gets the mode a plain open() would give it.
        os.fchmod(fd, 0o666 & ~_process_umask())
        self._file = os.fdopen(fd, "wb")
        self._path = path
        self.closed = False

    def write(self, data: bytes) -> int:
        try:
            return self._file.write(data)
        except BaseException:
            self._discard()
            raise

    def flush(self) -> None:
        try:
            self._file.flush()
        except BaseException:
            self._discard()
            raise

    def close(self) -> None:
        if self.closed:
            return
        # No fsync: the rename alone makes the file whole or absent when the disk fills (the
        # write fails first); an fsync per file would cost each save of a long search a sync of
        # every trial's files, which Tune copies again at each save.
        try:
            self._file.flush()
            self._file.close()
            os.replace(self._tmp, self._path)
        except BaseException:
            self._discard()
            raise
        self.closed = True

    def _discard(self) -> None:
        self.closed = True
        # The data it still buffered could not be written: it is discarded anyway.
        with contextlib.suppress(OSError):
            self._file.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self._discard()  # dropped unclosed (a failed copy): the target stays as it was

    # What pyarrow asks of a writable file object.
    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()


class AtomicLocalHandler(pyarrow.fs.FileSystemHandler):
    """pyarrow's LocalFileSystem, except that output streams write whole files or none."""

    def __init__(self) -> None:
        self._local = pyarrow.fs.LocalFileSystem()

    def __reduce__(self):
        return (AtomicLocalHandler, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(AtomicLocalHandler)

    def get_type_name(self) -> str:
        return "poptune-atomic-local"

    def normalize_path(self, path: str) -> str:
        return self._local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pyarrow.fs.FileInfo]:
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector: pyarrow.fs.FileSelector) -> list:
        return self._local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of the root directory")

    def delete_file(self, path: str) -> None:
        self._local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self._local.open_input_stream(src) as source:
            data = source.read()
        with self.open_output_stream(dest, None) as target:
            target.write(data)

    def open_input_stream(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_stream(path)

    def open_input_file(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: dict | None) -> pyarrow.NativeFile:
        # pyarrow wraps what this returns in a stream of its own, whose close() (as at the end of
        # a `with` block, even one left by an exception) renames the file: a caller that raised
        # between two writes would leave what it wrote. Tune writes each file in one call
        # (copy_files, or one write of bytes pickled beforehand), and a write that fails, or is
        # interrupted, discards the file at once.
        return pyarrow.PythonFile(_AtomicFile(path), mode="w")

    def open_append_stream(self, path: str, metadata: dict | None) -> pyarrow.NativeFile:
        # Appending cannot be made atomic this way; Tune does not append to storage files.
        return self._local.open_append_stream(path)


def atomic_local_filesystem() -> pyarrow.fs.FileSystem:
    """The file system to give Tune for an experiment on a local disk."""
    return pyarrow.fs.PyFileSystem(AtomicLocalHandler())


@functools.cache
def _process_umask() -> int:
    """The umask, read without setting it: os.umask() would change it for a moment for every
    thread, and Tune's syncer writes from a thread of its own."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8
        )
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0)
        os.umask(mask)
        return mask
