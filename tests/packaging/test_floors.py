"""scripts/check_floors.py pins the floors pyproject.toml declares (parsed, not copied),
and CI runs it."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_floors", ROOT / "scripts" / "check_floors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def test_every_base_dependency_is_pinned_at_its_floor() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _script().floors()
    assert len(pins) == len(deps)
    for dep, pin in zip(deps, pins, strict=True):
        name, floor = pin.split("==")
        assert dep.startswith(name)
        assert re.search(rf">=\s*{re.escape(floor)}\b", dep), (dep, pin)


def test_the_hub_floor_has_the_errors_module_the_hub_path_imports() -> None:
    pins = dict(p.split("==") for p in _script().floors())
    # huggingface_hub.errors (RevisionNotFoundError, OfflineModeIsEnabled, ...) is 0.25's.
    assert _version(pins["huggingface_hub"]) >= (0, 25)
    # click.exceptions.NoArgsIsHelpError, which the command group catches, is 8.2's.
    assert _version(pins["click"]) >= (8, 2)


def test_a_dependency_without_a_floor_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["click>=8.2", "rich"]\n')
    with pytest.raises(SystemExit, match="'rich' declares no single >= floor"):
        _script().floors(pyproject)
    pyproject.write_text("[project]\ndependencies = [\"pyyaml>=6.0; python_version>'3'\"]\n")
    assert _script().floors(pyproject) == ["pyyaml==6.0"]


def test_ci_runs_the_floor_check() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "python scripts/check_floors.py" in lines
