"""The run directory's layout and plan.json, read and written through axo_helper.rundir."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest

import axo_helper
from axo_helper import rundir
from axo_helper.rundir import (
    RunDir,
    data_rows,
    default_run_dir,
    plan_object,
    predicted_gib,
)

PACKAGE = Path(axo_helper.__file__).parent
# The run directory's file names: only rundir.py spells them.
RUN_DIR_NAMES = {
    rundir.PLAN_JSON,
    rundir.METRICS_SUMMARY,
    rundir.METRICS_STREAM,
    rundir.TRAIN_LOG,
    rundir.CONFIG_YML,
    rundir.MANIFEST,
    rundir.MODELFILE,
}
# Modules (relative to axo_helper/) that still spell one and are being moved onto
# rundir.py's names; the list only shrinks.
STILL_SPELLED: dict[str, set[str]] = {}


def test_paths_and_record_round_trip(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert rd.config == tmp_path / "axolotl.yml" and rd.output == tmp_path / "output"
    assert rd.metrics_stream.name == "metrics.jsonl" and rd.manifest.name == "manifest.json"
    assert rd.read_plan_record() is None
    rd.write_plan_record({"plan": {"method": "lora"}, "zzz": 1, "status": "dry-run"})
    # status first, the plan after the known keys, unknown keys last
    assert list(json.loads(rd.plan_json.read_text())) == ["status", "plan", "zzz"]
    assert rd.read_plan_record() == {"status": "dry-run", "plan": {"method": "lora"}, "zzz": 1}
    assert rd.holds_only_a_dry_run()
    rd.output.mkdir()
    assert not rd.holds_only_a_dry_run()
    rd.plan_json.write_text("[1, 2]")
    assert rd.read_plan_record() is None


def test_readers_use_the_keys_run_writes() -> None:
    record = {
        "memory": {"total_gib": 9.0},
        "attempts": [
            {"memory": {"total_gib": 9.0}},
            {"memory": None},
            {"memory": {"total_gib": 7.5}},
        ],
        "plan": {"method": "lora", "memory": {"total_gib": 9.0}},
        "inputs": {"model": "m", "data": "/d.jsonl", "data_rows": 320},
    }
    assert predicted_gib(record) == 7.5  # the last attempt's estimate is what ran
    assert predicted_gib({"plan": {"memory": {"total_gib": 3.0}}}) == 3.0
    assert predicted_gib(None) is None
    assert data_rows(record) == 320
    assert data_rows({"source": "config", "plan": None}) is None
    assert plan_object(record) == record["plan"]
    assert plan_object({"plan": None}) is None


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 0, -1.0, True, "7"])
def test_a_prediction_is_a_finite_positive_number(bad: object) -> None:
    assert predicted_gib({"memory": {"total_gib": bad}}) is None
    assert predicted_gib({"attempts": [{"memory": {"total_gib": bad}}], "memory": {"total_gib": 2}})
    assert predicted_gib({"attempts": [{"memory": {"total_gib": bad}}]}) is None


def test_the_export_names_are_the_run_directory_s(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    assert [rd.adapter.name, rd.merged.name] == list(rundir.EXPORT_VARIANTS)
    assert (rd.modelfile.name, rd.manifest.name) == ("Modelfile", "manifest.json")
    assert rd.export_lock == tmp_path / ".export.lock"


def _spelled_names(path: Path) -> set[str]:
    """Run-directory file names spelled as string literals, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in RUN_DIR_NAMES
        and id(node) not in docstrings
    }


def test_only_rundir_spells_the_run_directory_s_file_names() -> None:
    found = {
        path.relative_to(PACKAGE).as_posix(): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "rundir.py" or path.parent != PACKAGE
        if (names := _spelled_names(path))
    }
    unexpected = {
        mod: names - STILL_SPELLED.get(mod, set())
        for mod, names in found.items()
        if names - STILL_SPELLED.get(mod, set())
    }
    assert not unexpected, f"use axo_helper.rundir's names (or RunDir) instead: {unexpected}"
    # A module moved onto rundir's names comes off the list.
    assert {m: n for m, n in STILL_SPELLED.items() if not n <= found.get(m, set())} == {}


def test_default_run_dir() -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5)
    assert default_run_dir("Llama 3/8B-lora", now) == Path("runs/Llama-3-8B-lora-20250102-030405")
    assert default_run_dir("///", now) == Path("runs/run-20250102-030405")
