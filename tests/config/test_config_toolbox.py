"""Plans that use the memory toolbox (selective checkpointing, activation offloading,
ZeRO-2, CPU offload) render
configs that the schema and Axolotl's own validate_config accept, and read back as the
same TrainSetup (validate and trace see what was planned)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import pytest
from render_fixtures import data_spec

from axo_helper import hardware, memory, model, planner
from axo_helper.config.read import setup_from_config
from axo_helper.config.render import RenderedConfig, render_plan
from axo_helper.specs import DataSpec, Distributed, Method, Plan, TokenStats
from axo_helper.validate.lines import LineMap
from axo_helper.validate.schema import schema_errors
from axo_helper.versions import axolotl_installed

# (gpu, model, method, --distributed, --seq-len): what each one must turn on
CASES = {
    # 32k-token documents: 16-bit LoRA fits only with the blocks' inputs in host memory
    "activation-offloading": ("a100-80gb", "meta-llama/Llama-3.1-8B", "lora", None, 32768),
    # 16k tokens: keeping the attention outputs beats recomputing the scores
    "selective": ("h100-sxm", "meta-llama/Llama-3.1-8B", "lora", None, 16384),
    # the weights fit a replica per GPU, the Adam states do not: ZeRO-2
    "zero2": ("8xh100", "meta-llama/Llama-3.1-8B", "full", None, None),
    # ZeRO-2 kept, the optimizer states in host memory
    "zero2-offload": ("2xrtx4090", "meta-llama/Llama-3.2-3B", "full", "zero2", None),
    # 70B full: ZeRO-3 with parameters and states in host memory
    "zero3-offload": ("8xh100", "meta-llama/Llama-3.1-70B", "full", None, None),
}


def _data(case: str) -> DataSpec:
    if case != "selective":
        return data_spec("chat_template")
    # documents of ~12-16k tokens: too long to pack, so attention spans 16k tokens
    stats = TokenStats(p50=14000, p95=15800, p99=16000, max=16300, mean=13500.0, total=27_000_000)
    return replace(data_spec("completion", rows=2000), tokens=stats)


def _plan(case: str) -> tuple[Plan, RenderedConfig]:
    gpu, name, method, dist, seq = CASES[case]
    plan = planner.plan(
        hardware.resolve(gpu),
        model.inspect(name),
        _data(case),
        planner.load_policy(),
        method=cast(Method, method),
        distributed=cast("Distributed | None", dist),
        seq_len=seq,
    )
    rendered = render_plan(
        plan,
        output_dir="runs/t/output",
        dataset_path="data/train.jsonl",
        deepspeed_path="runs/t/deepspeed.json",
    )
    return plan, rendered


def test_activation_offloading_is_rendered_with_its_reason() -> None:
    plan, r = _plan("activation-offloading")
    s = plan.setup
    assert s.activation_offloading and s.gradient_checkpointing and s.method == "lora"
    assert r.config["activation_offloading"] is True
    assert r.config["gradient_checkpointing"] is True
    line = next(ln for ln in r.yaml_text.splitlines() if ln.startswith("activation_offloading:"))
    assert "pinned host memory" in line and "without it micro batch 1 needs" in line
    # the blocks' inputs the GPU no longer holds are the host memory the plan counts
    on_gpu = memory.estimate(s.__class__(**{**s.__dict__, "activation_offloading": False}))
    assert plan.memory.host_gib > 1.0
    assert on_gpu.total_gib - plan.memory.total_gib == pytest.approx(
        plan.memory.host_gib * (1 + 0.1), rel=0.15
    )
    assert on_gpu.total_gib > plan.budget_gib >= plan.memory.total_gib


def test_selective_checkpointing_is_rendered_where_it_is_faster() -> None:
    plan, r = _plan("selective")
    assert plan.setup.selective_checkpointing and plan.setup.gradient_checkpointing
    assert r.config["selective_checkpointing"] is True
    assert plan.reasons["selective_checkpointing"].startswith("on: the recompute skips")
    assert "faster here" in plan.reasons["selective_checkpointing"]


def test_zero2_and_offload_render_deepspeed_files() -> None:
    plan, r = _plan("zero2")
    assert plan.setup.distributed == "zero2" and not plan.setup.cpu_offload
    ds = json.loads(r.deepspeed_json or "{}")
    assert ds["zero_optimization"]["stage"] == 2
    assert "offload_optimizer" not in ds["zero_optimization"]

    plan, r = _plan("zero2-offload")
    assert plan.setup.distributed == "zero2" and plan.setup.cpu_offload
    zo = json.loads(r.deepspeed_json or "{}")["zero_optimization"]
    assert zo["offload_optimizer"]["device"] == "cpu" and "offload_param" not in zo
    assert plan.memory.host_gib > 0 and plan.memory.weights_gib > 5  # weights stay
    assert "optimizer states in host memory" in plan.reasons["distributed"]

    plan, r = _plan("zero3-offload")
    zo = json.loads(r.deepspeed_json or "{}")["zero_optimization"]
    assert plan.setup.distributed == "zero3"
    assert zo["offload_param"]["device"] == "cpu" and zo["offload_optimizer"]["device"] == "cpu"
    assert "optimizer states and parameters in host memory" in plan.reasons["distributed"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_reads_back_as_the_planned_setup(case: str) -> None:
    plan, r = _plan(case)
    assert schema_errors(r.config, r.yaml_text) == []
    cfg = dict(r.config)
    if r.deepspeed_json is not None:  # the JSON the config's deepspeed: path names
        cfg["deepspeed"] = json.loads(r.deepspeed_json)
    back = setup_from_config(cfg, plan.model, num_gpus=plan.setup.num_gpus)
    keys = ("activation_offloading", "selective_checkpointing", "gradient_checkpointing")
    for key in (*keys, "distributed", "cpu_offload"):
        assert getattr(back, key) == getattr(plan.setup, key), key


@pytest.mark.axolotl
@pytest.mark.parametrize("case", sorted(CASES))
def test_axolotl_accepts_the_toolbox_configs(case: str) -> None:
    if not axolotl_installed():
        pytest.skip("Axolotl is not installed (the [train] extra); CI runs this")
    from axo_helper.validate.axolotl import axolotl_check

    _, r = _plan(case)
    hw = hardware.resolve(CASES[case][0])
    errors, warnings, _ = axolotl_check(r.config, LineMap(r.yaml_text), hw)
    assert errors == [], [e.format() for e in errors]
    doubts: list[Any] = [w.message for w in warnings if "deprecated" in w.message]
    assert doubts == []
