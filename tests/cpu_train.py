"""The 3-step CPU LoRA config that end-to-end tests train the tiny model with under real
Axolotl: every key a CPU run needs (docs/cpu.md), the base and data by absolute path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from axo_helper.tinymodel import demo_data_path

QA = demo_data_path("qa.jsonl")


def cpu_lora_config(tiny_model: Path, run_dir: Path, **changes: Any) -> dict[str, Any]:
    """The config, with `changes` applied, written to <run_dir>/axolotl.yml."""
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
        "attn_implementation": "sdpa",
        "gradient_checkpointing": False,
        "dataloader_pin_memory": False,
    }
    cfg.update(changes)
    (run_dir / "axolotl.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg
