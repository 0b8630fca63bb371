"""Where an experiment is, as one object: a local folder or a bucket URI (s3://, gs:// and other
pyarrow file systems), with every read, write, listing and deletion poptune makes there.

Tune writes its experiment state through pyarrow's file systems; poptune's own files go the
same way, so local and remote experiments take one path: pyarrow's LocalFileSystem for a folder,
the bucket's file system for a URI. One difference is kept on purpose: a local file poptune
writes goes through :mod:`poptune.files` (a temporary file, fsync, rename), so a crash or a full
disk leaves the previous version whole; a bucket's object appears only once its upload completes.

The analysis reads trial histories, the study and the data fingerprint many times over and writes
plots and a model bundle, so a bucket experiment is analysed in a local copy (checkpoints left
out: it retrains from scratch) and what it wrote is uploaded. Every path in a URI is built with
:func:`poptune.uri.join`, so a query string that carries the endpoint
(``?endpoint_override=host:9000&scheme=http``) stays at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poptune import uri
from poptune.files import json_text, write_json_atomic

if TYPE_CHECKING:  # pyarrow is imported by the methods that touch files: see filesystem()
    import pyarrow.fs

CACHE_ENV = "POPTUNE_CACHE_DIR"  # where bucket experiments are copied for analysis
CHECKPOINT_PREFIX = "checkpoint_"  # Tune's trial checkpoint folders


@dataclass(frozen=True)
class ExperimentLocation:
    """An experiment folder (``where`` a local path) or its URI (s3://bucket/runs/name)."""

    where: str

    @classmethod
    def of(cls, location: str | Path) -> ExperimentLocation:
        """The location of a path, a ``file://`` URI (as a path) or a bucket URI."""
        text = str(location)
        return cls(text if uri.is_remote(text) else str(uri.local_path(text)))

    @property
    def is_remote(self) -> bool:
        return uri.is_remote(self.where)

    @property
    def local_dir(self) -> Path:
        """The folder of a local experiment (ValueError for a bucket's)."""
        return uri.local_path(self.where)

    def join(self, *parts: str) -> str:
        """``parts`` below the experiment, as a path or a URI (query string kept at the end)."""
        return uri.join(self.where, *parts)

    def shown(self, *parts: str) -> str:
        """``parts`` below the experiment as messages show them (no secrets)."""
        return uri.shown(self.join(*parts))

    def filesystem(self, *parts: str) -> tuple[pyarrow.fs.FileSystem, str]:
        """pyarrow's file system for ``parts`` below the experiment, and the path in it."""
        import pyarrow.fs  # on the first file touched: `import poptune` stays light

        if self.is_remote:
            return pyarrow.fs.FileSystem.from_uri(self.join(*parts))
        return pyarrow.fs.LocalFileSystem(), str(self.local_dir.joinpath(*parts).absolute())

    def holds_files(self) -> bool:
        """True if anything is stored in the experiment (object stores have no empty folders)."""
        import pyarrow.fs

        fs, path = self.filesystem()
        if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
            return False
        return bool(fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True)))

    def read_json(self, *parts: str) -> Any:
        """The JSON document at ``parts``; FileNotFoundError (naming it) if there is none."""
        import pyarrow.fs

        fs, path = self.filesystem(*parts)
        if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
            raise FileNotFoundError(self.shown(*parts))
        with fs.open_input_stream(path) as stream:
            return json.loads(stream.read().decode("utf-8"))

    def read_json_or_none(self, *parts: str) -> Any:
        try:
            return self.read_json(*parts)
        except FileNotFoundError:
            return None

    def write_json(self, document: Any, *parts: str) -> str:
        """Write ``document`` as JSON at ``parts``, whole or not at all (see the module); return
        where, as messages show it."""
        if not self.is_remote:
            return str(write_json_atomic(self.local_dir.joinpath(*parts), document))
        fs, path = self.filesystem(*parts)
        fs.create_dir(path.rpartition("/")[0], recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(json_text(document).encode("utf-8"))
        return self.shown(*parts)

    def make(self) -> None:
        """Create the experiment's folder (a bucket needs none: its objects make their prefix)."""
        if not self.is_remote:
            self.local_dir.mkdir(parents=True, exist_ok=True)

    def delete(self) -> None:
        """Remove the experiment and everything in it (``--force``), if it is there."""
        if not self.is_remote:
            # shutil refuses a symlinked folder, where pyarrow would drop the link alone and
            # leave the old experiment where it pointed.
            if self.local_dir.exists():
                shutil.rmtree(self.local_dir)
            return
        import pyarrow.fs

        fs, path = self.filesystem()
        if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
            fs.delete_dir(path)

    def prune_checkpoints(self) -> int:
        """Keep only the newest checkpoint of each trial of a finished search; return how many
        were removed. Only called when no trial is left to resume."""
        import pyarrow.fs

        fs, root = self.filesystem()
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

    def local_copy(self) -> Path:
        """The folder a bucket experiment is copied into for analysis: one per location, under
        $POPTUNE_CACHE_DIR (default: $XDG_CACHE_HOME/poptune, i.e. ~/.cache/poptune)."""
        root = os.environ.get(CACHE_ENV)
        if not root:
            xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            root = str(Path(xdg) / "poptune")
        scheme, _, rest = uri.strip_query(self.where).partition("://")
        parts = [p for p in rest.split("/") if p not in ("", ".", "..")]
        return Path(root).expanduser().joinpath("experiments", scheme, *parts)

    def download(self, local: Path) -> int:
        """Mirror the experiment into the folder ``local`` (replaced whole), without trial
        checkpoints; return the number of files copied. FileNotFoundError if it is not there."""
        import pyarrow.fs

        fs, root = self.filesystem()
        if fs.get_file_info(root).type != pyarrow.fs.FileType.Directory:
            raise FileNotFoundError(self.shown())
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

    def upload(self, local: Path, *parts: str) -> None:
        """Copy the local file or folder ``local`` to ``parts`` below the experiment."""
        import pyarrow.fs

        fs, path = self.filesystem(*parts)
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


def _in_checkpoint(relative: str) -> bool:
    return any(part.startswith(CHECKPOINT_PREFIX) for part in relative.split("/")[:-1])
