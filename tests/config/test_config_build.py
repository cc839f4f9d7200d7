"""config.build: each block of keys a Plan renders into (method, data, batch, sharding, output)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from render_fixtures import chat_for, data_spec, hand_plan, with_setup

from axo_helper.config.build import PLUGIN, PLUGIN_RUN_DIR_KEY
from axo_helper.config.render import render_plan


def render(plan: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


def test_qlora_on_a_gpu() -> None:
    cfg = render(hand_plan("rtx4090", method="qlora")).config
    assert cfg["adapter"] == "qlora"
    assert cfg["load_in_4bit"] is True and cfg["load_in_8bit"] is False
    assert cfg["lora_r"] == 16 and cfg["lora_alpha"] == 32 and cfg["lora_target_linear"] is True
    assert cfg["bf16"] is True and cfg["fp16"] is False and cfg["tf32"] is True
    assert cfg["attn_implementation"] == "flash_attention_2"
    assert "flash_attention" not in cfg and "sdp_attention" not in cfg
    assert cfg["gradient_checkpointing"] is True
    assert cfg["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    assert cfg["sample_packing"] is True and cfg["pad_to_sequence_len"] is True
    assert cfg["micro_batch_size"] == 2 and cfg["gradient_accumulation_steps"] == 4
    # Explicit, so Axolotl does not auto-enable them behind the config's back.
    assert cfg["lora_mlp_kernel"] is True and cfg["lora_embedding_kernel"] is True
    eight_bit = render(hand_plan("rtx4090", method="lora", load_in_8bit=True)).config
    assert eight_bit["load_in_8bit"] is True and eight_bit["lora_qkv_kernel"] is False


def test_t4_gets_fp16_and_sdpa_and_no_tf32() -> None:
    cfg = render(hand_plan("t4", method="lora")).config
    assert (cfg["bf16"], cfg["fp16"], cfg["tf32"]) == (False, True, False)
    assert cfg["attn_implementation"] == "sdpa"


def test_cpu_turns_every_16bit_flag_and_the_lora_kernels_off() -> None:
    cfg = render(hand_plan("cpu", method="lora")).config
    assert (cfg["bf16"], cfg["fp16"], cfg["tf32"]) == (False, False, False)
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
        assert cfg[key] is False


def test_full_fine_tune_has_no_adapter_keys() -> None:
    cfg = render(hand_plan("a100-80gb", method="full")).config
    assert "adapter" not in cfg and "lora_r" not in cfg
    assert cfg["load_in_4bit"] is False and cfg["load_in_8bit"] is False
    assert cfg["learning_rate"] == 2e-5


def test_gradient_checkpointing_off_has_no_kwargs() -> None:
    cfg = render(hand_plan(gradient_checkpointing=False)).config
    assert cfg["gradient_checkpointing"] is False
    assert "gradient_checkpointing_kwargs" not in cfg


def test_alpaca_standard_and_custom_keys(tmp_path: Path) -> None:

    from axo_helper import dataset

    cfg = render(hand_plan(kind="alpaca")).config
    assert cfg["datasets"][0]["type"] == "alpaca"
    assert "chat_template" not in cfg
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"question": f"q{i}?", "answer": f"a{i}.", "system": "Be brief."}) + "\n"
            for i in range(20)
        )
    )
    spec = dataset.inspect(qa)
    ds = render(hand_plan(data=spec), dataset_path=str(qa)).config["datasets"][0]
    # The mapping and the prompt format the token counts assumed go through unchanged.
    assert ds["type"] == spec.fields
    assert ds["type"]["field_instruction"] == "question"
    assert ds["type"]["field_output"] == "answer"
    assert ds["type"]["field_system"] == "system"
    assert "{instruction}" in ds["type"]["format"]
    assert "system_format" in ds["type"]


def test_completion_and_parquet() -> None:
    data = data_spec(
        "completion", fields={"field": "body"}, file_format="parquet", path="d.parquet"
    )
    ds = render(hand_plan(data=data), dataset_path="d.parquet").config["datasets"][0]
    assert ds == {"path": "d.parquet", "ds_type": "parquet", "type": "completion", "field": "body"}


def test_small_data_gets_no_eval_split() -> None:
    cfg = render(hand_plan(data=data_spec(rows=120))).config
    assert cfg["val_set_size"] == 0.0 and "evals_per_epoch" not in cfg
    cfg = render(hand_plan(data=data_spec(rows=50_000))).config
    assert 0 < cfg["val_set_size"] < 0.1 and cfg["evals_per_epoch"] >= 1


def test_plugin_is_listed_only_with_a_run_dir() -> None:
    plan = hand_plan()
    assert "plugins" not in render(plan).config
    cfg = render(plan, run_dir="runs/demo", output_dir="runs/demo/output").config
    assert cfg["plugins"] == [PLUGIN]
    assert cfg[PLUGIN_RUN_DIR_KEY] == "runs/demo"
    assert cfg["axo_helper_predicted_gib"] == 7.5
    assert cfg["output_dir"] == "runs/demo/output"


def test_overrides_land_under_extra_settings() -> None:
    r = render(hand_plan("cpu"), overrides={"max_steps": 3, "micro_batch_size": 1})
    assert r.config["max_steps"] == 3 and r.config["micro_batch_size"] == 1
    extra = r.yaml_text.split("# ---- extra settings", 1)[1]
    assert "max_steps: 3" in extra and "micro_batch_size: 1" in extra
    assert r.yaml_text.count("micro_batch_size:") == 1


def test_fsdp2_block() -> None:
    plan = hand_plan(
        "8xh100", model_name="meta-llama/Llama-3.1-8B", method="full", distributed="fsdp"
    )
    cfg = render(plan).config
    assert cfg["fsdp_version"] == 2
    fc = cfg["fsdp_config"]
    assert fc["transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fc["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fc["activation_checkpointing"] is True
    # transformers refuses both kinds of checkpointing at once
    assert cfg["gradient_checkpointing"] is False
    assert "deepspeed" not in cfg
    qlora = render(with_setup(plan, method="qlora")).config
    assert qlora["fsdp_config"]["cpu_ram_efficient_loading"] is False


def test_moe_qlora_renders_named_targets_that_axolotl_accepts() -> None:
    """quantize_moe_experts with lora_target_linear is refused by Axolotl 0.19 and the schema."""
    from axo_helper import core
    from axo_helper.validate.check import validate_text

    plan = core.make_plan(
        core.PlanRequest(
            "a100-80gb", "mistralai/Mixtral-8x7B-v0.1", method="qlora", use_calibration=False
        )
    )
    chats = data_spec("chat_template")
    plan = replace(plan, data=chats, chat=chat_for(plan.model, chats))
    cfg = render(plan).config
    assert cfg["quantize_moe_experts"] is True
    assert "lora_target_linear" not in cfg
    assert cfg["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    # The experts are adapted too, through PEFT's ParamWrapper, which refuses dropout.
    assert cfg["lora_target_parameters"] == ["experts.gate_up_proj", "experts.down_proj"]
    assert cfg["lora_dropout"] == 0.0
    both = {**cfg, "lora_target_linear": True}
    report = validate_text(yaml.safe_dump(both), run_axolotl=False)
    assert any("quantize_moe_experts" in e.message for e in report.errors)


def test_a_fixed_seed_makes_the_data_order_repeatable() -> None:
    # Axolotl 0.19 shuffles the prepared data with cfg.seed; unset, every run differs.
    text = render(hand_plan()).yaml_text
    assert render(hand_plan()).config["seed"] == 42
    assert "seed: 42  # fixed data order" in text


@pytest.mark.parametrize(
    ("kind", "fields", "file_format"),
    [
        ("alpaca", {}, "jsonl"),
        ("alpaca", {"field_instruction": "question", "field_output": "answer"}, "csv"),
        ("chat_template", None, "json"),
        ("completion", {"field": "body"}, "parquet"),
        ("completion", None, "txt"),
        ("input_output", {}, "mixed"),
    ],
)
def test_dataset_entry_is_datasets_own_with_the_renderers_keys(
    kind: str, fields: dict[str, Any] | None, file_format: str
) -> None:
    from axo_helper.config.data_keys import dataset_entry
    from axo_helper.dataset import axolotl_dataset_entry

    data = data_spec(kind, fields=fields, file_format=file_format, path="rows.jsonl")
    entry = dataset_entry(data, "/abs/rows.jsonl")
    own = axolotl_dataset_entry(data)
    # The path as the config names it, ds_type from the file format, roles for chats.
    assert next(iter(entry)) == "path" and entry["path"] == "/abs/rows.jsonl"
    ds_type = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet", "txt": "text"}
    assert entry.get("ds_type") == ds_type.get(file_format)
    assert entry.pop("roles_to_train", None) == (["assistant"] if kind == "chat_template" else None)
    entry.pop("ds_type", None)
    assert list(entry.items())[1:] == list(own.items())[1:]


def test_chat_keys_are_chat_decides_with_their_reasons() -> None:
    """Issue 11, cases 3, 4 and 6 as the rendered config shows them."""
    from axo_helper import model as model_mod

    roles = replace(data_spec("chat_template"), roles=("system", "user", "assistant"))
    gemma = render(hand_plan(spec=model_mod.inspect("google/gemma-2-9b"), data=roles))
    assert gemma.config["chat_template"] == "gemma"
    assert gemma.config["datasets"][0]["drop_system_message"] is True
    assert gemma.config["special_tokens"] == {"eos_token": "<end_of_turn>"}
    assert "System role not supported" in gemma.yaml_text
    mixtral = render(hand_plan(spec=model_mod.inspect("mistralai/Mixtral-8x7B-v0.1"))).config
    assert mixtral["chat_template"] == "mistral_v1"
    assert not {"eot_tokens", "special_tokens", "tokens"} & set(mixtral)
    llama = render(hand_plan(spec=model_mod.inspect("meta-llama/Llama-3.1-8B"))).config
    assert llama["special_tokens"] == {"eos_token": "<|eot_id|>"}
    assert llama["eot_tokens"] == ["<|eot_id|>"]
