"""MoE experts under LoRA/QLoRA: the planner adapts the fused expert tensors through
lora_target_parameters (Axolotl 0.19 / PEFT ParamWrapper), counts them, and says so."""

from __future__ import annotations

from dataclasses import replace

import pytest
from render_fixtures import chat_for, data_spec

from axo_helper import core
from axo_helper.config.read import setup_from_config
from axo_helper.config.render import render_plan
from axo_helper.memory import estimate
from axo_helper.specs import Plan

MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
EXPERTS = ("experts.gate_up_proj", "experts.down_proj")
# Mixtral-8x7B, r=16: attention q/k/v/o (13.6M) + per layer 8 experts x 16 x
# ((4096 + 2 x 14336) + (14336 + 4096)), over 32 layers (PEFT's ParamWrapper shapes).
ATTENTION = 13_631_488
EXPERT_ADAPTERS = 32 * 16 * 8 * ((4096 + 2 * 14336) + (14336 + 4096))


def _plan(gpu: str, model: str, method: str) -> Plan:
    plan = core.make_plan(core.PlanRequest(gpu, model, method=method, use_calibration=False))
    chats = data_spec("chat_template")
    return replace(plan, data=chats, chat=chat_for(plan.model, chats))


@pytest.mark.parametrize(("gpu", "method"), [("2xh100", "lora"), ("a100-80gb", "qlora")])
def test_mixtral_trains_its_experts(gpu: str, method: str) -> None:
    plan = _plan(gpu, MIXTRAL, method)
    s = plan.setup
    assert s.lora_target_parameters == EXPERTS
    assert s.lora_dropout == 0.0  # PEFT's ParamWrapper refuses dropout
    assert plan.memory.trainable_params == ATTENTION + EXPERT_ADAPTERS  # 223.3M, not 13.6M
    cfg = render_plan(plan, output_dir="out", dataset_path="data/qa.jsonl").config
    assert cfg["lora_target_parameters"] == list(EXPERTS)
    assert cfg["lora_dropout"] == 0.0
    assert ("quantize_moe_experts" in cfg) == (method == "qlora")


def test_the_yaml_names_what_is_and_is_not_adapted() -> None:
    text = render_plan(
        _plan("a100-80gb", MIXTRAL, "qlora"), output_dir="out", dataset_path="data/qa.jsonl"
    ).yaml_text
    line = next(x for x in text.splitlines() if x.startswith("lora_target_parameters:"))
    assert "8 experts" in line and "not adapted: gate" in line
    assert "every Linear layer" not in text  # the router and experts are no nn.Linear


def test_expert_adapters_cost_memory_beyond_their_parameters() -> None:
    s = _plan("a100-80gb", MIXTRAL, "qlora").setup
    without = replace(s, lora_target_parameters=())
    more = estimate(s).total_gib - estimate(without).total_gib
    # PEFT rebuilds W + B@A per block: Mixtral's two expert tensors are 1.41G elements.
    assert more > 2 * 1.41e9 * 2 / 2**30


def test_a_dense_model_keeps_its_policy_dropout_and_no_target_parameters() -> None:
    s = _plan("rtx4090", "meta-llama/Llama-3.1-8B", "qlora").setup
    assert s.lora_target_parameters == ()
    assert s.lora_dropout > 0


def test_validate_reads_the_expert_targets_back() -> None:
    plan = _plan("a100-80gb", "Qwen/Qwen3-30B-A3B", "qlora")
    cfg = render_plan(plan, output_dir="out", dataset_path="data/qa.jsonl").config
    read = setup_from_config(cfg, plan.model)
    assert read.lora_target_parameters == EXPERTS
    assert estimate(read).trainable_params == plan.memory.trainable_params
    experts_only = {k: v for k, v in cfg.items() if k != "lora_target_modules"}
    assert setup_from_config(experts_only, plan.model).lora_targets == ()


def test_moe_falls_back_to_attention_only_when_the_experts_do_not_fit() -> None:
    """Qwen3-30B-A3B QLoRA on a 24 GB card: with expert adapters nothing fits, so the plan
    adapts the attention layers only and says so in a warning and in the YAML comment."""
    p = _plan("rtx4090", "Qwen/Qwen3-30B-A3B", "qlora")
    assert p.setup.lora_target_parameters == ()
    assert p.memory.total_gib <= p.budget_gib
    assert any("experts are not adapted" in w for w in p.warnings)
    assert p.setup.lora_dropout > 0  # the policy's dropout: no ParamWrapper to refuse it
    rendered = render_plan(p, output_dir="o", dataset_path="d.jsonl")
    assert "lora_target_parameters" not in rendered.config
    assert "not adapted:" in rendered.yaml_text and "experts" in rendered.yaml_text
    bigger = _plan("a100-80gb", "Qwen/Qwen3-30B-A3B", "qlora")
    assert bigger.setup.lora_target_parameters  # where they fit, the experts are adapted
