"""A rendered config trains under real `axolotl train` on CPU (the tiny local model).

Slow (~15 s of training plus Axolotl's start-up): marked `slow` and `axolotl`; CI
runs it. The config comes from the real planner and render, with one override:
max_steps: 3.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from axo_helper.config.render import render_plan, write_config
from axo_helper.core import PlanRequest, make_plan
from axo_helper.validate.check import validate_file
from axo_helper.versions import axolotl_installed


@pytest.mark.slow
@pytest.mark.axolotl
def test_rendered_lora_config_trains_three_steps_on_cpu(tiny_model: Path, tmp_path: Path) -> None:
    if not axolotl_installed():
        pytest.skip("Axolotl is not installed (the [train] extra)")
    from axo_helper.tinymodel import demo_data_path

    data = demo_data_path("qa.jsonl")
    plan = make_plan(PlanRequest("cpu", str(tiny_model), str(data), method="lora"))
    out = tmp_path / "output"
    rendered = render_plan(
        plan,
        output_dir=str(out),
        dataset_path=str(data),
        dataset_prepared_path=str(tmp_path / "prepared"),
        overrides={"max_steps": 3},
    )
    config = tmp_path / "train.yml"
    write_config(rendered, config)
    cfg = yaml.safe_load(config.read_text())
    assert cfg["lora_mlp_kernel"] is False and cfg["bf16"] is False and cfg["fp16"] is False

    report = validate_file(config, run_axolotl=False)
    assert report.valid, [e.format() for e in report.errors]

    env = {
        **os.environ,
        "AXOLOTL_DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    # `python -m axolotl.cli.train`, not `axolotl train`: the latter re-executes through
    # `accelerate` looked up on PATH, which a non-activated venv does not have.
    result = subprocess.run(
        [sys.executable, "-m", "axolotl.cli.train", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert (out / "adapter_model.safetensors").is_file(), sorted(p.name for p in out.iterdir())
    assert (out / "adapter_config.json").is_file()
    assert "'train_loss'" in log or "train_loss" in log
