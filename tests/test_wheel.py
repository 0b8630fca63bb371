"""`python -m build` makes an sdist and a wheel that carry the package and its licence, with
index metadata, and the wheel installed alone into a fresh virtualenv runs a search end to end.

Slow (about a minute and a half on 2 cores: most of it installing torch and Ray into the new
venv, from pip's cache), but part of `make test`: it is the only test that sees poptune the way
a user who runs `pip install poptune-*.whl` does, without this checkout on the path.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from localray.env import private_ray_env

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[1]
DIST_INFO = "poptune-0.1.0.dist-info/"


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and, built from it, the wheel, as `python -m build` makes them (with the
    pinned setuptools of this environment instead of a freshly downloaded one)."""
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT],
                timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The metadata is in the current form: setuptools warns about deprecated forms.
    assert "deprecat" not in (proc.stdout + proc.stderr).lower(), proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "poptune-0.1.0-py3-none-any.whl",
        "poptune-0.1.0.tar.gz",
    ]
    return out


def test_the_wheel_carries_the_package_and_its_licence_only(dist):
    with zipfile.ZipFile(dist / "poptune-0.1.0-py3-none-any.whl") as wheel:
        names = wheel.namelist()
        licence = wheel.read(f"{DIST_INFO}licenses/LICENSE").decode()
    assert all(n.startswith(("poptune/", DIST_INFO)) for n in names), names
    modules = {n for n in names if n.startswith("poptune/")}
    source = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "poptune").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules == source  # every module, and nothing else (no tests, benchmarks, runs)
    assert licence == (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "the poptune authors" in licence


def test_the_wheel_has_index_metadata(dist):
    with zipfile.ZipFile(dist / "poptune-0.1.0-py3-none-any.whl") as wheel:
        meta = Parser().parsestr(wheel.read(f"{DIST_INFO}METADATA").decode())
        entry_points = wheel.read(f"{DIST_INFO}entry_points.txt").decode()
    assert meta["Name"] == "poptune" and meta["Version"] == "0.1.0"
    assert "Spotify" in meta["Summary"]
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE"]
    assert meta["License"] is None  # the deprecated free-text field is not written
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# poptune")  # the README is the long description
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls["Source"].startswith("https://") and {"Homepage", "Issues"} <= set(urls)
    classifiers = meta.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # superseded by SPDX
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("torch") for r in requires)
    assert any(r.startswith("ray[tune]") for r in requires)
    assert "poptune = poptune.cli:main" in entry_points


def test_the_sdist_carries_the_sources_and_the_licence(dist):
    with tarfile.open(dist / "poptune-0.1.0.tar.gz") as sdist:
        names = {n.removeprefix("poptune-0.1.0/") for n in sdist.getnames()}
    assert {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "PKG-INFO",
        "poptune/cli/__init__.py",
        "localray/__init__.py",  # what the tests it carries start and stop Ray with
    } <= names
    assert not [n for n in names if n.startswith(("runs/", "benchmarks/", ".venv/", "dist/"))]


@pytest.mark.timeout(1800)
def test_the_wheel_alone_in_a_fresh_venv_runs_a_search(dist, tmp_path):
    venv = tmp_path / "venv"
    try:
        proc = _run([sys.executable, "-m", "venv", venv], timeout=300)
        assert proc.returncode == 0, proc.stderr
        python = venv / "bin" / "python"
        # --no-compile: byte-compiling torch and Ray at install costs more than this run saves.
        proc = _run([python, "-m", "pip", "install", "--quiet", "--no-compile",
                     "-c", ROOT / "constraints.txt", dist / "poptune-0.1.0-py3-none-any.whl"],
                    timeout=1200)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]

        work = tmp_path / "work"  # not this checkout: only the installed wheel can be imported
        work.mkdir()
        where = "import importlib.util as u; print(*(u.find_spec(m).origin for m in sys.argv[1:]))"
        proc = _run([python, "-c", f"import sys; {where}", "poptune", "torch", "ray"], cwd=work,
                    timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        origins = proc.stdout.split()
        assert len(origins) == 3 and all(Path(p).is_relative_to(venv) for p in origins), origins

        proc = _run([venv / "bin" / "poptune", "--help"], cwd=work, timeout=300)
        assert proc.returncode == 0 and "run" in proc.stdout, proc.stderr[-3000:]

        with private_ray_env(tmp_path / "home") as env:
            proc = _run([venv / "bin" / "poptune", "run", "--synthetic-rows", "1000",
                         "--num-samples", "2", "--max-epochs", "2", "--seeds", "1",
                         "--storage", "runs", "--name", "wheel"],
                        cwd=work, env=env, timeout=900)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics = json.loads((work / "runs" / "wheel" / "analysis" / "metrics.json").read_text())
        rmse = metrics["test"]["rmse"]
        assert math.isfinite(rmse) and 0 < rmse < 100
        assert metrics["search"]["trials"] == 2
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1.3 GB of torch and Ray
