"""config.read: any Axolotl config -> TrainSetup, with Axolotl's defaults for what it leaves out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from axo_helper import model as model_mod
from axo_helper.config.read import (
    KNOWN_DEEPSPEED_CONFIGS,
    LEGACY_ATTENTION_FLAGS,
    attention_of,
    batch_of,
    distributed_of,
    fsdp_options,
    known_deepspeed,
    precision_of,
    setup_from_config,
    target_dtype,
)
from axo_helper.errors import ConfigError

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
        # pydantic's lax mode: "2" and 2.0 are the integer 2
        ({"micro_batch_size": "2", "gradient_accumulation_steps": -1, "batch_size": 6}, (2, 3)),
        ({"micro_batch_size": 2.0}, (2, 1)),
        ({"micro_batch_size": "two"}, (1, 1)),
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


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deepspeed_configs/zero1.json", ("zero1", False)),
        ("deepspeed_configs/zero2.json", ("zero2", True)),  # Axolotl's zero2 offloads the optimizer
        ("deepspeed_configs/zero3_bf16.json", ("zero3", False)),
        ("deepspeed_configs/zero3_bf16_cpuoffload_params.json", ("zero3", True)),
        ("../axolotl/deepspeed_configs/zero3_bf16_cpuoffload_all.json", ("zero3", True)),
    ],
)
def test_known_axolotl_deepspeed_names_are_read_without_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, expected: tuple[str, bool]
) -> None:
    monkeypatch.chdir(tmp_path)  # neither beside the config nor in the working directory
    assert distributed_of({"deepspeed": name}, 2, tmp_path) == expected
    assert set(KNOWN_DEEPSPEED_CONFIGS) >= {"zero1_torch_compile", "zero2_torch_compile", "zero3"}


def test_a_present_file_wins_over_the_known_name_and_unknown_names_stay_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deepspeed_configs").mkdir()
    (tmp_path / "deepspeed_configs" / "zero3.json").write_text(
        json.dumps({"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}})
    )
    # The user's own file says offload; the name alone would say none.
    assert distributed_of({"deepspeed": "deepspeed_configs/zero3.json"}, 2) == ("zero3", True)
    assert known_deepspeed("deepspeed_configs/zero4.json") is None
    assert known_deepspeed("my_configs/zero3.json") is None
    with pytest.raises(ConfigError, match="not found"):
        distributed_of({"deepspeed": "deepspeed_configs/zero4.json"}, 2)
    with pytest.raises(ConfigError, match="not found"):
        distributed_of({"deepspeed": "ds/zero2.json"}, 2)


def test_fsdp_prefixed_keys_are_read_as_axolotl_strips_them() -> None:
    spec = model_mod.inspect(LLAMA_1B)
    prefixed = {
        "fsdp": ["full_shard", "auto_wrap"],
        "fsdp_config": {
            "fsdp_offload_params": True,
            "fsdp_activation_checkpointing": True,
            "fsdp_version": 2,
            "fsdp_state_dict_type": "FULL_STATE_DICT",
        },
    }
    assert fsdp_options(prefixed) == {
        "offload_params": True,
        "activation_checkpointing": True,
        "fsdp_version": 2,  # Axolotl keeps this one as it is
        "state_dict_type": "FULL_STATE_DICT",
    }
    s = setup_from_config(prefixed, spec, 8)
    assert (s.distributed, s.cpu_offload, s.gradient_checkpointing) == ("fsdp", True, True)
    off = setup_from_config({"fsdp_config": {"fsdp_offload_params": False}}, spec, 8)
    assert (off.distributed, off.cpu_offload, off.gradient_checkpointing) == ("fsdp", False, False)
    # Both spellings: the later key wins, as in Axolotl's rename.
    both = {"fsdp_config": {"offload_params": False, "fsdp_offload_params": True}}
    assert distributed_of(both, 8) == ("fsdp", True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (8, 8),
        (8.0, 8),
        ("8", 8),
        (" 16 ", 16),
        ("1_024", 1024),
        ("8.0", 8),
        (8.5, None),
        ("eight", None),
        (None, None),
        ([8], None),
    ],
)
def test_numbers_are_read_as_pydantic_reads_them(value: object, expected: int | None) -> None:
    from axo_helper.config.read import lax_int

    assert lax_int(value) == expected


def test_a_config_axolotl_accepts_is_estimated_with_lax_values() -> None:
    """lora_r: "8", sequence_len: 2048.0, bf16: "yes" are what Axolotl reads as 8, 2048, on."""
    from axo_helper.config.read import precision_of, setup_from_config
    from axo_helper.model import inspect

    cfg = {
        "base_model": "meta-llama/Llama-3.2-1B",
        "adapter": "lora",
        "lora_r": "8",
        "sequence_len": 2048.0,
        "micro_batch_size": "2",
        "bf16": "yes",
    }
    setup = setup_from_config(cfg, inspect("meta-llama/Llama-3.2-1B"))
    assert (setup.lora_r, setup.sequence_len, setup.micro_batch_size) == (8, 2048, 2)
    assert precision_of(cfg) == "bf16"
