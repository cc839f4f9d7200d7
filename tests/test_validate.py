"""validate: YAML -> JSON Schema -> Axolotl -> memory, every problem at once, with lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from render_fixtures import hand_plan

from axo_helper import hardware
from axo_helper import model as model_mod
from axo_helper.axolotl_config import attention_of, distributed_of, precision_of, setup_from_config
from axo_helper.cli import cli
from axo_helper.errors import ConfigError
from axo_helper.render import render_plan
from axo_helper.validate import (
    LineMap,
    axolotl_available,
    parse_config,
    schema_errors,
    validate_text,
)

LLAMA_1B = "meta-llama/Llama-3.2-1B"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["validate", *args])


def write(tmp_path: Path, text: str, name: str = "train.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """\
base_model: meta-llama/Llama-3.2-1B
datasets:
  - path: qa.jsonl
    type: alpaca
learning_rate: 0.0002
micro_batch_size: 2
gradient_accumulation_steps: 4
"""

# Six problems on known lines; one run must report every one of them.
BROKEN = """\
base_model: meta-llama/Llama-3.2-1B
adapter: qlora
load_in_4bit: false
lora_r: 0
datasets:
  - type: alpaca
micro_batch_size: two
learning_rate: 0.0002
attn_implementation: flash
bf16: true
fp16: true
"""


# --------------------------------------------------------------------------- schema
def test_schema_errors_are_all_reported_at_once_with_lines(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    result = run(str(path), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "invalid (6 errors)" in out
    for expected in (
        "load_in_4bit (line 3): adapter: qlora needs load_in_4bit: true",
        "lora_r (line 4): 0 is less than the minimum of 1",
        "datasets.0 (line 6): 'path' is a required property",
        "micro_batch_size (line 7): 'two' is not of type 'integer'",
        "attn_implementation (line 9): 'flash' is not one of",
        "bf16 (line 10): bf16 and fp16 exclude each other",
    ):
        assert expected in out, (expected, out)
    assert "did you mean flash_attention_2?" in out


def test_json_report(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, BROKEN)), "--no-axolotl", "--gpu", "none", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False and report["fits"] is None and report["memory"] is None
    assert {e["path"] for e in report["errors"]} >= {"load_in_4bit", "lora_r", "datasets.0", "bf16"}
    assert all(isinstance(e["line"], int) for e in report["errors"])
    assert report["axolotl"].startswith("skipped")


def test_a_key_close_to_a_known_one_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = MINIMAL + "micro_batchsize: 4\nmy_own_note: hello\nsdp_attention: true\n"
    result = run(str(write(tmp_path, text)), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 0, result.output
    assert (
        "micro_batchsize (line 8): unknown key (Axolotl ignores it); did you mean micro_batch_size?"
        in result.output
    )
    assert "my_own_note" not in result.output  # unknown but not close to anything: allowed silently
    assert "sdp_attention (line 10): deprecated" in result.output


def test_a_duplicated_key_is_a_warning_at_the_value_that_counts(tmp_path: Path) -> None:
    text = MINIMAL + "micro_batch_size: 8\n"  # a hand edit appended below the original
    report = validate_text(text, run_axolotl=False)
    assert report.valid
    (dup,) = report.warnings
    assert dup.format() == (
        "micro_batch_size (line 8): duplicate key: this value replaces the one on line 6 (YAML keeps the last)"
    )


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    result = run(
        str(write(tmp_path, "base_model: x\ndatasets:\n  - path: a\n   type: b\n")),
        "--no-axolotl",
        "--gpu",
        "none",
    )
    assert result.exit_code == 1
    assert "not valid YAML at line 4, column" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "is empty"), ("- a\n- b\n", "not a mapping"), ("just text\n", "not a mapping")],
)
def test_not_a_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert run(str(tmp_path / "nope.yml")).exit_code == 2


def test_cross_field_rules() -> None:
    def errs(cfg: dict[str, Any]) -> list[str]:
        return [
            e.message
            for e in schema_errors(
                {"base_model": "m", "learning_rate": 1e-4, "datasets": [{"path": "p"}], **cfg}
            )
        ]

    assert errs({"load_in_8bit": True})[0].startswith("load_in_4bit / load_in_8bit quantize")
    assert errs({"adapter": "lora", "load_in_4bit": True, "load_in_8bit": True})[0].startswith(
        "load_in_4bit and load_in_8bit"
    )
    assert errs({"deepspeed": "ds.json", "fsdp_version": 2, "fsdp_config": {}})[0].startswith(
        "deepspeed and fsdp"
    )
    assert errs(
        {
            "gradient_checkpointing": True,
            "fsdp_version": 2,
            "fsdp_config": {"activation_checkpointing": True},
        }
    )
    assert errs({"batch_size": 16})[0].startswith("batch_size alone")
    assert errs({"adapter": "lora", "load_in_8bit": True}) == []
    assert (
        errs({"learning_rate": "2e-5"}) == []
    )  # YAML 1.1 reads 2e-5 as a string; Axolotl accepts it
    assert errs({"learning_rate": "fast"})


def test_missing_deepspeed_file_is_an_error_and_a_relative_one_is_found_beside_the_config(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, MINIMAL + "deepspeed: ds_zero3.json\n")
    result = run(str(path), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 1
    assert "deepspeed (line 8): deepspeed: ds_zero3.json not found" in result.output
    (tmp_path / "ds_zero3.json").write_text('{"zero_optimization": {"stage": 3}}')
    assert run(str(path), "--no-axolotl", "--gpu", "none").exit_code == 0


def test_line_map_follows_nested_keys() -> None:
    lines = LineMap("a: 1\nb:\n  c:\n    - x\n    - {d: 2}\n")
    assert lines.line(("a",)) == 1
    assert lines.line(("b", "c", 1, "d")) == 5
    assert lines.line(("b", "c", 0)) == 4
    assert lines.line(("b", "zzz")) == 2  # falls back to the nearest ancestor


# --------------------------------------------------------------------------- setup_from_config
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


# --------------------------------------------------------------------------- memory
def test_hand_edit_round_trip_follows_the_edit(tmp_path: Path) -> None:
    """A generated file, edited by hand (micro batch changed, comments gone, extra keys):
    still valid, and the estimate is the edited config's, not the plan's."""
    pytest.importorskip("axo_helper.memory")
    hw = hardware.resolve("rtx4090")
    spec = model_mod.inspect(LLAMA_1B)
    rendered = render_plan(
        hand_plan("rtx4090", method="lora"), output_dir="out", dataset_path="qa.jsonl"
    )
    edited = dict(yaml.safe_load(rendered.yaml_text))
    edited["micro_batch_size"] = 4
    edited.update({"seed": 7, "wandb_project": "mine", "save_total_limit": 2, "my_team_tag": "x"})
    text = yaml.safe_dump(edited, sort_keys=False)  # no comments left
    assert "#" not in text
    report = validate_text(text, hardware=hw, run_axolotl=False, model=spec)
    assert report.valid, [e.format() for e in report.errors]
    assert report.warnings == []
    assert report.memory is not None and report.memory.setup is not None
    assert report.memory.setup.micro_batch_size == 4
    original = validate_text(rendered.yaml_text, hardware=hw, run_axolotl=False, model=spec)
    assert original.memory is not None
    assert report.memory.breakdown.activations_gib > original.memory.breakdown.activations_gib
    assert report.memory.breakdown.weights_gib == original.memory.breakdown.weights_gib


def test_does_not_fit_exits_3_and_names_a_micro_batch_that_fits(tmp_path: Path) -> None:
    pytest.importorskip("axo_helper.memory")
    text = MINIMAL.replace("micro_batch_size: 2", "micro_batch_size: 64") + (
        "sequence_len: 4096\nbf16: true\nadapter: lora\nlora_r: 16\nlora_target_linear: true\n"
        "gradient_checkpointing: true\nattn_implementation: flash_attention_2\n"
    )
    result = run(str(write(tmp_path, text)), "--no-axolotl", "--gpu", "rtx4090")
    assert result.exit_code == 3, result.output
    assert "does not fit: needs" in result.output
    assert "micro_batch_size" in result.output and "would fit" in result.output
    ok = run(
        str(write(tmp_path, MINIMAL + "bf16: true\nadapter: lora\n", "ok.yml")),
        "--no-axolotl",
        "--gpu",
        "rtx4090",
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["fits"] is True
    assert report["memory"]["total_gib"] <= report["memory"]["budget_gib"] < 24


def test_unknown_gpu_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(write(tmp_path, MINIMAL)), "--no-axolotl", "--gpu", "rtx9999")
    assert result.exit_code == 2


# --------------------------------------------------------------------------- Axolotl
@pytest.mark.axolotl
def test_axolotl_own_errors_come_back_as_path_line_message() -> None:
    if not axolotl_available():
        pytest.skip("Axolotl is not installed")
    # Valid for the schema; Axolotl refuses the fused LoRA kernels on an 8-bit base.
    text = MINIMAL + "adapter: lora\nload_in_8bit: true\nlora_mlp_kernel: true\n"
    report = validate_text(text)
    assert not report.valid
    (err,) = [e for e in report.errors if e.source == "axolotl"]
    assert "8-bit" in err.message
    assert err.path == "lora_mlp_kernel" and err.line == 10
    assert report.axolotl.startswith("checked with Axolotl")
    assert validate_text(MINIMAL).valid
