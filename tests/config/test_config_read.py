"""config.read: any Axolotl config -> TrainSetup, with Axolotl's defaults for what it leaves out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from axo_helper import model as model_mod
from axo_helper.config.read import (
    LEGACY_ATTENTION_FLAGS,
    attention_of,
    batch_of,
    distributed_of,
    precision_of,
    setup_from_config,
    target_dtype,
)

LLAMA_1B = "meta-llama/Llama-3.2-1B"


def test_setup_from_a_hand_written_config(tmp_path: Path) -> None:
    spec = model_mod.inspect(LLAMA_1B)
    (tmp_path / "ds.json").write_text(
        json.dumps({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}})
    )
    cfg = {
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 64,
        "lora_target_modules": ["q_proj", "v_proj"],
        "sequence_len": 4096,
        "sample_packing": True,
        "micro_batch_size": 3,
        "gradient_checkpointing": True,
        "flash_attention": True,
        "optimizer": "paged_adamw_8bit",
        "bf16": "auto",
        "deepspeed": "ds.json",
        "liger_fused_linear_cross_entropy": True,
        "lora_modules_to_save": ["embed_tokens"],
    }
    s = setup_from_config(cfg, spec, num_gpus=4, config_dir=tmp_path)
    assert (s.method, s.precision, s.lora_r, s.lora_targets) == (
        "qlora",
        "bf16",
        64,
        ("q_proj", "v_proj"),
    )
    assert (s.sequence_len, s.sample_packing, s.micro_batch_size) == (4096, True, 3)
    assert (s.gradient_checkpointing, s.attn_implementation, s.optimizer) == (
        True,
        "flash_attention_2",
        "paged_adamw_8bit",
    )
    assert (s.distributed, s.cpu_offload, s.num_gpus, s.quant_storage_bf16) == (
        "zero3",
        True,
        4,
        True,
    )
    assert s.fused_cross_entropy and s.lora_modules_to_save == ("embed_tokens",)


def test_setup_defaults_are_axolotls() -> None:
    s = setup_from_config({"base_model": "x"}, model_mod.inspect(LLAMA_1B))
    assert (s.method, s.precision, s.micro_batch_size, s.sequence_len) == ("full", "fp32", 1, 2048)
    assert (s.gradient_checkpointing, s.attn_implementation, s.distributed) == (
        False,
        "sdpa",
        "none",
    )
    assert setup_from_config({}, model_mod.inspect(LLAMA_1B), num_gpus=2).distributed == "ddp"


@pytest.mark.parametrize(
    ("cfg", "attn"),
    [
        ({}, "sdpa"),
        ({"attn_implementation": "eager"}, "eager"),
        ({"attn_implementation": "flash_attention_3"}, "flash_attention_2"),
        ({"attn_implementation": "kernels-community/flash-attn3"}, "flash_attention_2"),
        ({"sdp_attention": True}, "sdpa"),
        ({"xformers_attention": True}, "sdpa"),
        ({"flash_attention": True}, "flash_attention_2"),
    ],
)
def test_attention_of(cfg: dict[str, Any], attn: str) -> None:
    assert attention_of(cfg) == attn


def test_precision_and_fsdp_of() -> None:
    assert precision_of({"fp16": True}) == "fp16"
    assert precision_of({"bf16": True, "fp16": False}) == "bf16"
    assert distributed_of({"fsdp_version": 2, "fsdp_config": {"offload_params": True}}, 8) == (
        "fsdp",
        True,
    )
    assert distributed_of({"deepspeed": {"zero_optimization": {"stage": 2}}}, 8) == ("zero2", False)
    s = setup_from_config(
        {"fsdp_config": {"activation_checkpointing": True}}, model_mod.inspect(LLAMA_1B), 8
    )
    assert s.gradient_checkpointing and s.distributed == "fsdp"


@pytest.mark.parametrize(
    ("cfg", "batch"),
    [
        ({}, (1, 1)),
        ({"micro_batch_size": 4, "gradient_accumulation_steps": 8}, (4, 8)),
        ({"micro_batch_size": 4, "batch_size": 32}, (4, 8)),
        ({"micro_batch_size": 64, "batch_size": 32}, (64, 1)),
        ({"micro_batch_size": True, "gradient_accumulation_steps": 0}, (1, 1)),
        ({"micro_batch_size": "2", "gradient_accumulation_steps": -1, "batch_size": 6}, (1, 6)),
        ({"micro_batch_size": 2.0}, (1, 1)),
    ],
)
def test_batch_of_is_what_axolotl_uses(cfg: dict[str, Any], batch: tuple[int, int]) -> None:
    assert batch_of(cfg) == batch


@pytest.mark.parametrize(
    ("cfg", "dtype"),
    [
        ({}, None),
        ({"bf16": True}, "bfloat16"),
        ({"bf16": "true"}, "bfloat16"),
        ({"bf16": "auto"}, None),
        ({"bf16": False, "fp16": True}, "float16"),
        ({"fp16": "True"}, "float16"),
        ({"bf16": True, "fp16": True}, "bfloat16"),
        ({"bfloat16": True}, None),
    ],
)
def test_target_dtype_is_the_switched_on_training_precision(
    cfg: dict[str, Any], dtype: str | None
) -> None:
    assert target_dtype(cfg) == dtype


def test_every_legacy_attention_flag_is_estimated_like_its_replacement() -> None:
    for flag, impl in LEGACY_ATTENTION_FLAGS.items():
        assert attention_of({flag: True}) == attention_of({"attn_implementation": impl}), flag
    assert attention_of({"sage_attention": True, "eager_attention": True}) == "flash_attention_2"
