"""config.build lays out Plan.settings: the keys the planner decides, with its reasons."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml
from planner_helpers import POLICY, gpu, mdl, qa_data
from render_fixtures import hand_plan

from axo_helper import planner
from axo_helper.config.build import build_config
from axo_helper.config.render import render_plan
from axo_helper.specs import Plan, Setting

LORA_KERNELS = ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel")


def render(plan: Plan, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


def comment_of(text: str, key: str) -> tuple[Any, str]:
    """The value and the `# reason` of a top-level key's line."""
    (line,) = [ln for ln in text.splitlines() if ln.startswith(f"{key}: ")]
    value, _, reason = line.partition("  # ")
    return yaml.safe_load(value)[key], reason


def test_fsdp_gradient_checkpointing_comment_agrees_with_its_value() -> None:
    """Bug: under FSDP the key is false, yet its comment was the planner's "on: without it
    ..." (the reason for the activation checkpointing fsdp_config does instead)."""
    plan = planner.plan(
        gpu("2xrtx4090"), mdl("meta-llama/Llama-3.1-8B"), qa_data(), POLICY, distributed="fsdp"
    )
    assert plan.setup.distributed == "fsdp" and plan.setup.gradient_checkpointing
    assert plan.reasons["gradient_checkpointing"].startswith("on")
    r = render(plan)
    value, reason = comment_of(r.yaml_text, "gradient_checkpointing")
    assert value is False
    assert not reason.startswith("on") and "FSDP" in reason
    assert "gradient_checkpointing_kwargs" not in r.config
    assert r.config["fsdp_config"]["activation_checkpointing"] is True


def test_non_fsdp_gradient_checkpointing_keeps_the_planners_reason() -> None:
    plan = planner.plan(gpu("rtx4090"), mdl("meta-llama/Llama-3.1-8B"), qa_data(), POLICY)
    value, reason = comment_of(render(plan).yaml_text, "gradient_checkpointing")
    assert value is plan.setup.gradient_checkpointing
    assert reason == plan.reasons["gradient_checkpointing"]


def _changed(setting: Setting, value: bool | int | float) -> Setting:
    return Setting(value, f"changed to {value} by the test")


@pytest.mark.parametrize("gpu_name", ["rtx4090", "cpu"])
def test_every_key_the_planner_decides_is_read_from_plan_settings(gpu_name: str) -> None:
    """Change each Setting in the Plan; the YAML follows, value and comment."""
    plan = hand_plan(gpu_name, method="lora")
    s = plan.settings
    assert s is not None and s.lora_kernels is not None
    changed = replace(
        s,
        tf32=_changed(s.tf32, not s.tf32.value),
        seed=_changed(s.seed, 7),
        val_set_size=_changed(s.val_set_size, 0.1),
        gradient_checkpointing=_changed(s.gradient_checkpointing, False),
        lora_kernels=_changed(s.lora_kernels, not s.lora_kernels.value),
        dataloader_pin_memory=_changed(s.tf32, True),
        dataset_num_proc=_changed(s.seed, 3),
    )
    assert plan.setup.gradient_checkpointing  # the setup's memory choice is not the key
    text = render(replace(plan, settings=changed)).yaml_text
    expected = {
        "tf32": not s.tf32.value,
        "seed": 7,
        "val_set_size": 0.1,
        "gradient_checkpointing": False,
        "dataloader_pin_memory": True,
        "dataset_num_proc": 3,
        **{key: not s.lora_kernels.value for key in LORA_KERNELS},
    }
    for key, value in expected.items():
        assert comment_of(text, key) == (value, f"changed to {value} by the test"), key
    assert "gradient_checkpointing_kwargs" not in text
    assert "evals_per_epoch: 2" in text  # follows the rendered val_set_size


def test_keys_a_setting_leaves_out_are_not_written() -> None:
    plan = hand_plan("rtx4090", method="lora")
    assert plan.settings is not None and plan.settings.dataloader_pin_memory is None
    cfg = render(replace(plan, settings=replace(plan.settings, lora_kernels=None))).config
    assert not any(key in cfg for key in LORA_KERNELS)
    assert "dataloader_pin_memory" not in cfg and "dataset_num_proc" not in cfg


def test_val_set_size_argument_still_overrides_the_setting() -> None:
    plan = hand_plan("rtx4090", method="lora")
    assert plan.settings is not None and plan.settings.val_set_size.value == 0.02
    value, reason = comment_of(render(plan, val_set_size=0.2).yaml_text, "val_set_size")
    assert (value, reason) == (0.2, "as requested")


def test_a_plan_without_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="no settings"):
        build_config(replace(hand_plan(), settings=None), output_dir="o", dataset_path="d")
