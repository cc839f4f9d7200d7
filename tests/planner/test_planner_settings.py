"""planner.settings: the config values the planner decides for render, with their reasons."""

from __future__ import annotations

import json

import pytest
from planner_helpers import POLICY, gpu, mdl, qa_data

from axo_helper import planner
from axo_helper.planner.settings import decide_settings, val_set_size
from axo_helper.specs import GPU, Hardware, TrainSetup

LLAMA8 = "meta-llama/Llama-3.1-8B"


@pytest.mark.parametrize(
    ("cc", "vendor", "cuda", "tf32", "fp8", "sm"),
    [
        ((8, 9), "nvidia", True, True, False, "sm_89"),
        ((7, 5), "nvidia", True, False, False, "sm_75"),
        ((9, 0), "nvidia", True, True, True, "sm_90"),
        (None, "nvidia", True, False, False, None),
        (None, "amd", False, False, False, None),
    ],
)
def test_gpu_capability_flags(
    cc: tuple[int, int] | None, vendor: str, cuda: bool, tf32: bool, fp8: bool, sm: str | None
) -> None:
    g = GPU(name="x", memory_gib=24.0, compute_capability=cc, vendor=vendor)  # type: ignore[arg-type]
    assert (g.cuda, g.tf32, g.fp8, g.sm) == (cuda, tf32, fp8, sm)


def test_tf32_seed_and_kernels_on_an_ampere_gpu() -> None:
    p = planner.plan(gpu("rtx4090"), mdl(LLAMA8), qa_data(), POLICY)
    s = p.settings
    assert s is not None
    assert (s.tf32.value, s.seed.value) == (True, 42)
    assert s.lora_kernels is not None and s.lora_kernels.value is True
    assert s.dataloader_pin_memory is None and s.dataset_num_proc is None
    assert s.gradient_checkpointing.value == p.setup.gradient_checkpointing
    assert s.gradient_checkpointing.reason == p.reasons["gradient_checkpointing"]


def test_t4_has_no_tf32_and_full_has_no_lora_kernels() -> None:
    p = planner.plan(gpu("t4"), mdl("Qwen/Qwen2.5-0.5B"), qa_data(), POLICY, method="full")
    assert p.settings is not None
    assert p.settings.tf32.value is False and p.settings.tf32.reason == "no TF32 on this device"
    assert p.settings.lora_kernels is None


def test_cpu_settings() -> None:
    hw = Hardware(gpus=(), source="cpu")
    s = decide_settings(hw, TrainSetup(model=mdl(LLAMA8)), None, "why")
    assert s.tf32.value is False
    assert s.lora_kernels is not None and s.lora_kernels.value is False
    assert s.lora_kernels.reason == "the fused Triton kernels need a CUDA GPU"
    assert s.dataloader_pin_memory is not None and s.dataloader_pin_memory.value is False
    assert s.dataset_num_proc is not None and s.dataset_num_proc.value == 1


def test_an_8bit_base_gets_no_lora_kernels() -> None:
    setup = TrainSetup(model=mdl(LLAMA8), load_in_8bit=True)
    s = decide_settings(gpu("rtx4090"), setup, None, "why")
    assert s.lora_kernels is not None and s.lora_kernels.value is False
    assert s.lora_kernels.reason == "the fused kernels do not support an 8-bit base"


@pytest.mark.parametrize(("rows", "size"), [(10_000, 0.02), (2000, 0.02), (500, 0.05), (499, 0.0)])
def test_val_set_size_by_rows(rows: int, size: float) -> None:
    assert val_set_size(qa_data(rows=rows)).value == size
    assert val_set_size(None).value == 0.0


def test_fsdp_gradient_checkpointing_key_is_off_and_says_why() -> None:
    """Bug: under FSDP the config's gradient_checkpointing is false, but its comment was the
    planner's "on: without it ..." reason for the activation checkpointing FSDP does."""
    p = planner.plan(
        gpu("2xrtx4090"), mdl(LLAMA8), qa_data(), POLICY, method="lora", distributed="fsdp"
    )
    assert p.setup.distributed == "fsdp"
    assert p.settings is not None
    gc = p.settings.gradient_checkpointing
    assert gc.value is False
    assert not gc.reason.startswith("on")
    assert "FSDP" in gc.reason


def test_settings_are_in_the_json_after_the_existing_keys() -> None:
    p = planner.plan(gpu("rtx4090"), mdl(LLAMA8), qa_data(), POLICY)
    obj = json.loads(json.dumps(p.to_json()))
    # New keys go after the existing ones: `rows` (the row fate) came after `settings`.
    assert list(obj)[-6:] == ["reasons", "settings", "rows", "chat", "freeze", "model_notes"]
    assert obj["settings"]["tf32"] == {"value": True, "reason": "TF32 matmuls (Ampere and newer)"}
    assert obj["settings"]["seed"]["value"] == 42
