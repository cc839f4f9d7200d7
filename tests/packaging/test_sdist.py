"""The sdist is the whole project: every file its tests, presets, templates, docs,
benchmarks and scripts need, and those tests pass from the unpacked archive alone."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Tests that read files outside the package: presets, templates, benchmarks data, docs,
# the demo data, the PKG-INFO of an unpacked install; a quick set, not the whole suite.
FROM_SDIST = [
    "tests/test_packaging.py",
    "tests/packaging/test_metadata.py",
    "tests/packaging/test_floors.py",
    "tests/hardware/test_hardware_profiles.py",
    "tests/benchmarks/test_gpu_measure.py",
    "tests/memory/test_memory_estimate.py",
    "tests/model/test_model_layouts.py",
    "tests/dataset/test_dataset_files.py",
    "tests/cli/test_cli_errors.py",
    "tests/export/test_card_conventions.py",
]
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}


def _included() -> list[str]:
    sdist = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    return list(sdist["targets"]["sdist"]["include"])


def _tree_files(top: str) -> set[str]:
    path = ROOT / top
    if path.is_file():
        return {top}
    return {
        str(f.relative_to(ROOT))
        for f in path.rglob("*")
        if f.is_file() and not SKIP_PARTS & set(f.parts) and f.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    out = tmp_path_factory.mktemp("sdist")
    build = [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out / "dist")]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (archive,) = (out / "dist").glob("axo_helper-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(out / "src", filter="data")
    (top,) = (out / "src").iterdir()
    return top, names


@pytest.mark.slow
def test_the_sdist_holds_every_file_of_its_folders(unpacked: tuple[Path, set[str]]) -> None:
    _, names = unpacked
    folders = (
        "axo_helper",
        "presets",
        "templates",
        "tests",
        "benchmarks",
        "docs",
        "scripts",
        ".ci",
    )
    for top in folders:
        assert top in _included()
        missing = _tree_files(top) - names
        assert not missing, f"{top}: {sorted(missing)[:10]}"
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"} <= names
    assert "axo_helper/py.typed" in names
    assert "benchmarks/data/vram-dev.csv" in names  # read by the calibration tests


@pytest.mark.slow
def test_the_index_page_metadata(unpacked: tuple[Path, set[str]]) -> None:
    top, _ = unpacked
    info = (top / "PKG-INFO").read_text(encoding="utf-8")
    assert "Project-URL: Homepage, https://" in info
    assert "Classifier: Typing :: Typed" in info
    assert "](docs/" not in info  # the README's links work off the tree too


@pytest.mark.slow
def test_the_tests_pass_from_the_unpacked_sdist(unpacked: tuple[Path, set[str]]) -> None:
    top, _ = unpacked
    # `python -m` puts the unpacked tree first on sys.path: its axo_helper, not the checkout's.
    where = subprocess.run(
        [sys.executable, "-c", "import axo_helper; print(axo_helper.__file__)"],
        cwd=top,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(top), where.stdout
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow"]
    done = subprocess.run(
        [*argv, *FROM_SDIST], cwd=top, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " error" not in done.stdout
