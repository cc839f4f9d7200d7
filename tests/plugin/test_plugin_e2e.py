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
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("torch")
pytest.importorskip("axolotl")

import oom_plugin  # noqa: E402

from axo_helper.calibration import CalibrationStore  # noqa: E402
from axo_helper.rundir import METRICS_STREAM, METRICS_SUMMARY  # noqa: E402
from axo_helper.tinymodel import demo_data_path  # noqa: E402

QA = demo_data_path("qa.jsonl")


def read_stream(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / METRICS_STREAM).read_text().splitlines()]


def train_config(tiny_model: Path, run_dir: Path, **changes: Any) -> dict[str, Any]:
    """A 3-step CPU LoRA config with the plugin, written to <run_dir>/axolotl.yml."""
    cfg: dict[str, Any] = {
        "base_model": str(tiny_model),
        "datasets": [
            {
                "path": str(QA),
                "type": "chat_template",
                "chat_template": "tokenizer_default",
                "field_messages": "messages",
                "roles_to_train": ["assistant"],
            }
        ],
        "dataset_prepared_path": str(run_dir / "prepared"),
        "dataset_num_proc": 1,
        "val_set_size": 0,
        "output_dir": str(run_dir / "output"),
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_target_linear": True,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "lora_embedding_kernel": False,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "num_epochs": 1,
        "max_steps": 3,
        "optimizer": "adamw_torch",
        "learning_rate": 1e-3,
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "attn_implementation": "sdpa",
        "gradient_checkpointing": False,
        "dataloader_pin_memory": False,
        "logging_steps": 1,
        "save_steps": 3,
        "plugins": ["axo_helper.plugin.AxoHelperPlugin"],
        "axo_helper_run_dir": str(run_dir),
    }
    cfg.update(changes)
    (run_dir / "axolotl.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


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
