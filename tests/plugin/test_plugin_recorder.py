"""metrics.jsonl / metrics.json: the recorder, driven directly with a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.axolotl
pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axo_helper.plugin.recorder import MetricsRecorder  # noqa: E402
from axo_helper.rundir import METRICS_STREAM, METRICS_SUMMARY  # noqa: E402


def read_stream(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / METRICS_STREAM).read_text().splitlines()]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_recorder_streams_steps_and_writes_the_summary_once(tmp_path: Path) -> None:
    clock = Clock()
    rec = MetricsRecorder(
        tmp_path,
        world_size=2,
        now=clock,
        memory=lambda: (3.5, "cuda_max_memory_reserved"),
        device="NVIDIA H100",
    )
    rec.begin(max_steps=3)
    for step, (dt, tokens, loss) in enumerate(
        [(5.0, 100, 2.0), (1.0, 100, 1.5), (1.0, 300, 1.0)], 1
    ):
        clock.t += dt
        rec.step(step=step, epoch=step / 3, tokens=tokens)
        if step != 2:  # step 2 was not logged (logging_steps > 1): written without a loss
            rec.log(step=step, logs={"loss": loss, "learning_rate": 1e-4, "grad_norm": 0.5})
        rec.log(step=step, logs={"eval_loss": 9.9})  # an evaluation: its own line
    first = rec.finish()
    assert rec.finish() == {}  # post_train's second call: nothing more

    everything = read_stream(tmp_path)
    evals = [ln for ln in everything if ln["event"] == "eval"]
    assert [(e["step"], e["eval_loss"]) for e in evals] == [(1, 9.9), (2, 9.9), (3, 9.9)]
    lines = [ln for ln in everything if ln["event"] != "eval"]
    assert [ln["event"] for ln in lines] == ["start", "step", "step", "step", "end"]
    s1, s2, s3 = lines[1:4]
    assert (s1["step"], s1["loss"], s1["step_time_s"], s1["tokens"]) == (1, 2.0, 5.0, 200)
    assert s1["tokens_per_s"] == 40.0 and s1["peak_memory_gib"] == 3.5 and s1["max_steps"] == 3
    assert s2["loss"] is None and s2["step"] == 2
    assert s3["learning_rate"] == 1e-4

    summary = json.loads((tmp_path / METRICS_SUMMARY).read_text())
    assert summary == first
    assert summary["tokens_per_s"] == pytest.approx(800 / 2.0)  # the warm-up step left out
    assert summary["step_times_s"] == [5.0, 1.0, 1.0] and summary["final_loss"] == 1.0
    assert summary["device_type"] == "cuda" and summary["peak_memory_gib"] == 3.5


def test_recorder_appends_on_resume(tmp_path: Path) -> None:
    for attempt in range(2):
        rec = MetricsRecorder(tmp_path, now=Clock(), memory=lambda: (1.0, "process_max_rss"))
        rec.begin(max_steps=4, resumed_from_step=2 * attempt)
    assert [ln["resumed_from_step"] for ln in read_stream(tmp_path)] == [0, 2]
