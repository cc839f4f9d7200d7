"""Measured peak memory against the prediction plan.json holds, per component."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_runs import planned_record

from axo_helper.report.memory import memory_figures


def test_the_prediction_is_split_into_its_components_and_compared(tmp_path: Path) -> None:
    record = planned_record(rows=400, gpu_spec="a10g", model="Qwen/Qwen2.5-7B", method="qlora")
    breakdown = record["memory"]
    mem = memory_figures(
        record, {"peak_memory_gib": 9.0, "peak_memory_kind": "cuda_max_memory_reserved"}, []
    )
    parts = mem["components_gib"]
    assert parts and "total" not in parts and "budget" not in parts
    assert sum(parts.values()) == pytest.approx(breakdown["total_gib"], abs=0.05)
    assert mem["predicted_gib"] == breakdown["total_gib"]
    expected = 100 * (9.0 - breakdown["total_gib"]) / breakdown["total_gib"]
    assert mem["error_pct"] == pytest.approx(expected, abs=0.05)
    assert mem["missing"] == []


def test_after_an_oom_replan_the_last_attempt_is_the_prediction() -> None:
    record = planned_record(attempt_gib=(20.0, 14.5))
    mem = memory_figures(
        record, {"peak_memory_gib": 14.0, "peak_memory_kind": "cuda_max_memory_reserved"}, []
    )
    assert mem["predicted_gib"] == 14.5


def test_a_cpu_measurement_is_shown_but_not_held_to_the_gpu_prediction() -> None:
    record = planned_record()
    mem = memory_figures(
        record, {"peak_memory_gib": 0.9, "peak_memory_kind": "process_max_rss"}, []
    )
    assert mem["measured_gib"] == 0.9 and mem["error_pct"] is None
    assert any("CPU" in m for m in mem["missing"])


def test_without_plan_or_summary_the_steps_peak_is_used_and_the_gap_named() -> None:
    steps = [{"step": 1, "peak_memory_gib": 1.5}, {"step": 2, "peak_memory_gib": 2.25}]
    mem = memory_figures(None, None, steps)
    assert mem["measured_gib"] == 2.25 and mem["predicted_gib"] is None
    assert mem["components_gib"] == {} and mem["error_pct"] is None
    assert any("no predicted peak" in m for m in mem["missing"])
