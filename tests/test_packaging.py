"""The wheel carries presets/ and templates/, and every preset loads from the installed package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from axo_helper import resources

ROOT = Path(__file__).resolve().parent.parent


def test_every_preset_parses_from_the_package() -> None:
    files = resources.iter_preset_files()
    assert "gpus.yaml" in files
    assert "policy.yaml" in files
    assert any(f.startswith("models/") for f in files)
    for rel in files:
        assert resources.load_preset(rel) is not None, rel


@pytest.mark.slow
def test_wheel_ships_presets_and_templates_and_loads_them(tmp_path: Path) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("axo_helper-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    assert "axo_helper/presets/gpus.yaml" in names
    assert "axo_helper/presets/policy.yaml" in names
    assert any(n.startswith("axo_helper/templates/") and n.endswith(".j2") for n in names)
    assert {"axo_helper/templates/model_card.md.j2", "axo_helper/templates/Modelfile.j2"} <= names
    # Import from the unpacked wheel only (not the checkout) and load every preset.
    probe = (
        "import axo_helper.resources as r, sys;"
        "assert 'site' in str(r.presets_dir()), r.presets_dir();"
        "fs = r.iter_preset_files(); [r.load_preset(f) for f in fs];"
        "print(len(fs))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 3
