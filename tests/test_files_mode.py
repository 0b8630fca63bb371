"""Result files are written atomically but must still be readable like any other file."""

import os

from poptune.files import write_json_atomic


def test_atomic_write_uses_the_umask_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind
