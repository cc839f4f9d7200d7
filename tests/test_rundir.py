"""The run directory's layout and plan.json, read and written through axo_helper.rundir."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from axo_helper.rundir import (
    RunDir,
    data_rows,
    default_run_dir,
    plan_object,
    predicted_gib,
)


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


def test_default_run_dir() -> None:
    now = dt.datetime(2025, 1, 2, 3, 4, 5)
    assert default_run_dir("Llama 3/8B-lora", now) == Path("runs/Llama-3-8B-lora-20250102-030405")
    assert default_run_dir("///", now) == Path("runs/run-20250102-030405")
