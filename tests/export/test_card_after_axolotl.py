"""The model card after a real `axolotl train` (slow): the card PEFT, the Trainer and
Axolotl wrote in output/README.md is merged in, and no host path is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axo_helper.export import export_run  # noqa: E402
from axo_helper.export.hub_card import front_matter  # noqa: E402
from axo_helper.tinymodel import demo_data_path  # noqa: E402


def train(tiny_model: Path, run_dir: Path) -> None:
    """Three LoRA steps on CPU, with the base and the data named by absolute paths."""
    cfg = {
        "base_model": str(tiny_model),
        "datasets": [{"path": str(demo_data_path("qa.jsonl")), "type": "chat_template"}],
        "chat_template": "tokenizer_default",
        "dataset_prepared_path": str(run_dir / "prepared"),
        "dataset_num_proc": 1,
        "val_set_size": 0,
        "output_dir": str(run_dir / "output"),
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_target_linear": True,
        # Axolotl's fused LoRA kernels need CUDA.
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "lora_embedding_kernel": False,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 3,
        "optimizer": "adamw_torch",
        "learning_rate": 1e-3,
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "gradient_checkpointing": False,
        "attn_implementation": "sdpa",
        "dataloader_pin_memory": False,
    }
    (run_dir / "axolotl.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "axolotl.cli.train", "axolotl.yml"],
        cwd=run_dir,
        env={**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_card_merges_axolotls_and_names_no_host_path(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    train(tiny_model, run)
    written = (run / "output" / "README.md").read_text()
    assert "Built with Axolotl" in written and str(tiny_model) in written  # what it replaces

    export_run(run)
    for variant in ("adapter", "merged"):
        card = (run / variant / "README.md").read_text()
        front, body = front_matter(card)
        assert str(tmp_path) not in card and str(tiny_model.parent) not in card
        assert "base_model" not in front and "datasets" not in front  # local: no hub ids
        assert front["library_name"] == ("peft" if variant == "adapter" else "transformers")
        assert front["model-index"] == [{"name": "run", "results": []}]
        assert "Built with Axolotl" in body
        assert "<details><summary>See axolotl config</summary>" in body
        assert "## Training procedure" in body and "- training_steps: 3" in body
        assert "- `qa.jsonl` (type `chat_template`)" in body
