"""Exit codes come from the error classes (docs/cli.md), never from a raise site."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from axo_helper import errors

PACKAGE = Path(errors.__file__).resolve().parent


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.AxoHelperError, 1),
        (errors.UsageError, 2),
        (errors.GPUSpecError, 2),
        (errors.MissingPathError, 2),
        (errors.ModelPathError, 2),
        (errors.DatasetPathError, 2),
        (errors.DatasetUsageError, 2),
        (errors.ExportUsageError, 2),
        (errors.OutputExistsError, 2),
        (errors.ModelError, 1),
        (errors.DatasetError, 1),
        (errors.PlanError, 1),
        (errors.ConfigError, 1),
        (errors.HardwareError, 1),
        (errors.Interrupted, 130),
    ],
)
def test_each_class_has_its_documented_exit_code(
    cls: type[errors.AxoHelperError], code: int
) -> None:
    assert cls("something").exit_code == code


def test_path_errors_are_still_their_family() -> None:
    assert isinstance(errors.ModelPathError("x"), errors.ModelError)
    assert isinstance(errors.DatasetPathError("x"), errors.DatasetError)


def test_a_failed_training_passes_the_child_exit_code_through() -> None:
    assert errors.TrainingError("x", child_exit_code=7).exit_code == 7
    assert errors.TrainingError("x", child_exit_code=None).exit_code == 1
    assert errors.TrainingError("x", child_exit_code=0).exit_code == 1  # failed all the same


def test_a_raise_site_cannot_pick_the_number() -> None:
    with pytest.raises(TypeError):
        errors.AxoHelperError("x", exit_code=3)  # type: ignore[call-arg]


def test_no_module_passes_an_exit_code_to_an_error() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            error_class = name.endswith(("Error", "Interrupted"))
            if error_class and any(k.arg == "exit_code" for k in node.keywords):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []
