"""poptune's own small files beside Tune's state when the experiment lives in s3:// or gs://.

Tune writes its experiment state through pyarrow's file systems; poptune_search.json goes the
same way, so that `--resume` and `poptune analyze` (after copying the experiment down) find the
settings and data fingerprint of a cloud search as they do for a local one.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow.fs


def write_json_uri(uri: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``uri``; the object appears only once the upload completes."""
    filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
    filesystem.create_dir(path.rpartition("/")[0], recursive=True)
    # allow_nan=False: a NaN in a result file is a bug to surface, not a value to store.
    data = (json.dumps(obj, indent=2, allow_nan=False) + "\n").encode("utf-8")
    with filesystem.open_output_stream(path) as stream:
        stream.write(data)


def read_json_uri(uri: str) -> Any:
    """The JSON document at ``uri``; FileNotFoundError if there is none."""
    filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
    if filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
        raise FileNotFoundError(uri)
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read().decode("utf-8"))
