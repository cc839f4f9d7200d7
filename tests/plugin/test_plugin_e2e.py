"""Real `axolotl train` on CPU with the plugin (slow): the hooks fire, the files hold
real numbers; and with tests/oom_plugin.py a real OOM leaves the steps before it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("torch")
pytest.importorskip("axolotl")

import oom_plugin  # noqa: E402
from cpu_train import cpu_lora_config  # noqa: E402

from axo_helper.calibration import CalibrationStore  # noqa: E402
from axo_helper.rundir import METRICS_STREAM, METRICS_SUMMARY  # noqa: E402


def read_stream(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / METRICS_STREAM).read_text().splitlines()]


def train_config(tiny_model: Path, run_dir: Path, **changes: Any) -> dict[str, Any]:
    """A 3-step CPU LoRA config with the plugin, written to <run_dir>/axolotl.yml."""
    plugin = {
        "gradient_accumulation_steps": 2,
        "num_epochs": 1,
        "logging_steps": 1,
        "save_steps": 3,
        "plugins": ["axo_helper.plugin.AxoHelperPlugin"],
        "axo_helper_run_dir": str(run_dir),
    }
    return cpu_lora_config(tiny_model, run_dir, **{**plugin, **changes})


def axolotl_train(
    run_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "axolotl.cli.train", "axolotl.yml"],
        cwd=run_dir,
        env={**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_real_axolotl_train_with_the_plugin(tiny_model: Path, tmp_path: Path) -> None:
    """`axolotl train` on CPU: the hooks fire, the files hold real numbers, then export."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train_config(tiny_model, run_dir)
    proc = axolotl_train(run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    lines = read_stream(run_dir)
    steps = [ln for ln in lines if ln["event"] == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    for s in steps:
        assert s["max_steps"] == 3
        assert 0 < s["loss"] < 20 and s["learning_rate"] > 0
        assert s["step_time_s"] > 0 and s["tokens"] > 0 and s["tokens_per_s"] > 0
        assert s["peak_memory_gib"] > 0.1  # process RSS: torch alone is hundreds of MB
    # post_train runs twice in Axolotl 0.19: the end-of-run work happened once.
    assert [ln["event"] for ln in lines].count("end") == 1

    summary = json.loads((run_dir / METRICS_SUMMARY).read_text())
    assert summary["steps"] == 3 and summary["device_type"] == "cpu"
    assert summary["peak_memory_kind"] == "process_max_rss"
    assert summary["tokens_per_s"] > 0 and summary["final_loss"] == steps[-1]["loss"]
    assert summary["calibration"]["recorded"] is False  # CPU runs do not calibrate
    assert CalibrationStore().measurements() == []

    from axo_helper.export import export_run, verify_export

    result = export_run(run_dir)
    assert result.variants == ("adapter", "merged") and verify_export(run_dir) == []
    assert "3" in (run_dir / "adapter" / "README.md").read_text()


def test_an_oom_leaves_the_steps_before_it_and_no_summary(tiny_model: Path, tmp_path: Path) -> None:
    """tests/oom_plugin.py in a real Axolotl child: the recipe `run`'s OOM tests use."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train_config(
        tiny_model, run_dir, plugins=["axo_helper.plugin.AxoHelperPlugin", oom_plugin.PLUGIN]
    )
    proc = axolotl_train(run_dir, env=oom_plugin.oom_env(at_step=2, above_micro_batch=1))
    assert proc.returncode != 0
    assert "CUDA out of memory" in proc.stdout + proc.stderr
    steps = [ln for ln in read_stream(run_dir) if ln["event"] == "step"]
    assert [s["step"] for s in steps] == [1]  # step 2 raised before it was written
    assert not (run_dir / METRICS_SUMMARY).exists()
