"""validate: YAML and JSON Schema steps, key warnings, every problem at once with lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from render_fixtures import MINIMAL, write

from axo_helper.errors import ConfigError
from axo_helper.validate.check import validate_text
from axo_helper.validate.lines import LineMap, parse_config
from axo_helper.validate.schema import schema_errors

# Six problems on known lines (each one Axolotl 0.19 rejects too); one run must
# report every one of them.
BROKEN = """\
base_model: meta-llama/Llama-3.2-1B
adapter: qlora
load_in_4bit: false
lora_r: eight
datasets:
  - path: data.jsonl
    shards: many
micro_batch_size: two
learning_rate: 0.0002
attn_implementation: flash
quantize_moe_experts: true
lora_target_linear: true
"""


def test_schema_errors_are_all_reported_at_once_with_lines(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    path = write(tmp_path, BROKEN)
    result = cli("validate", str(path), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "invalid (6 errors)" in out
    for expected in (
        "load_in_4bit (line 3): Require cfg.load_in_4bit to be True for qlora",
        "lora_r (line 4): 'eight' is not of type 'integer'",
        "datasets.0.shards (line 7): 'many' is not of type 'integer'",
        "micro_batch_size (line 8): 'two' is not of type 'integer'",
        "attn_implementation (line 10): 'flash' is not one of",
        "quantize_moe_experts (line 11): lora_target_linear is not compatible with quantize_moe_experts",
    ):
        assert expected in out, (expected, out)
    assert "did you mean flash_attention_2?" in out


def test_json_report(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli(
        "validate", str(write(tmp_path, BROKEN)), "--no-axolotl", "--gpu", "none", "--json"
    )
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["valid"] is False and report["fits"] is None and report["memory"] is None
    assert {e["path"] for e in report["errors"]} >= {
        "load_in_4bit",
        "lora_r",
        "datasets.0.shards",
        "quantize_moe_experts",
    }
    assert all(isinstance(e["line"], int) for e in report["errors"])
    assert report["axolotl"].startswith("skipped")


def test_a_key_close_to_a_known_one_is_a_warning_not_an_error(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    text = MINIMAL + "micro_batchsize: 4\nmy_own_note: hello\nsdp_attention: true\n"
    result = cli("validate", str(write(tmp_path, text)), "--no-axolotl", "--gpu", "none")
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


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli(
        "validate",
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


def test_missing_file_is_a_usage_error(tmp_path: Path, cli: Callable[..., Result]) -> None:
    assert cli("validate", str(tmp_path / "nope.yml")).exit_code == 2


def test_cross_field_rules_are_axolotls_and_only_axolotls() -> None:
    def errs(cfg: dict[str, Any]) -> list[str]:
        return [
            e.message
            for e in schema_errors(
                {"base_model": "m", "learning_rate": 1e-4, "datasets": [{"path": "p"}], **cfg}
            )
        ]

    assert errs({"load_in_8bit": True})[0].startswith("load_in_8bit and load_in_4bit are not")
    assert errs({"deepspeed": "ds.json", "fsdp": ["full_shard"]}) == [
        "deepspeed and fsdp cannot be used together."
    ]
    assert errs({"batch_size": 16})[0].startswith("At least two of micro_batch_size")
    # Rules the hand-written schema had and Axolotl 0.19 does not: accepted now.
    assert errs({"adapter": "lora", "load_in_4bit": True, "load_in_8bit": True}) == []
    assert errs({"bf16": True, "fp16": True}) == []
    assert errs({"deepspeed": "ds.json", "fsdp_version": 2, "fsdp_config": {}}) == []
    assert (
        errs(
            {
                "gradient_checkpointing": True,
                "fsdp_version": 2,
                "fsdp_config": {"activation_checkpointing": True},
            }
        )
        == []
    )
    assert errs({"adapter": "qlora", "merge_lora": True}) == []  # merging: no 4-bit
    assert errs({"learning_rate": "2e-5"}) == []  # YAML 1.1 reads 2e-5 as a string
    assert errs({"learning_rate": "fast"}) == []  # str | float in Axolotl 0.19
    assert errs({"learning_rate": [0.1]})


def test_empty_keys_and_lax_values_pass_as_axolotl_reads_them(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    text = MINIMAL + (
        "dataset_prepared_path:\nwandb_project:\nresume_from_checkpoint:\n"
        "warmup_steps: 10.0\nbf16: 'yes'\nevals_per_epoch: 0\n"
    )
    result = cli("validate", str(write(tmp_path, text)), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 0, result.output
    assert "error" not in result.output


def test_fsdp_prefixed_keys_are_known_and_checked(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "fsdp_version: 2\nfsdp_config:\n  fsdp_offload_params: maybe\n  fsdp_state_dict_typ: FULL\n"
    )
    report = validate_text(text, run_axolotl=False)
    assert [e.format() for e in report.errors] == [
        "fsdp_config.fsdp_offload_params (line 10): 'maybe' is not of type 'boolean'"
    ]
    (typo,) = [w for w in report.warnings if w.path.endswith("fsdp_state_dict_typ")]
    assert typo.line == 11 and "did you mean fsdp_state_dict_type?" in typo.message


def test_the_schema_of_the_installed_axolotl_is_chosen_else_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from axo_helper.validate import schema as module

    def choose(installed: str | None) -> module.SchemaChoice:
        monkeypatch.setattr(module, "version", lambda dist: installed)
        module.schema_choice.cache_clear()
        try:
            return module.schema_choice()
        finally:
            module.schema_choice.cache_clear()

    newest = max(module.shipped_schemas())
    newest_name = f"{newest[0]}.{newest[1]}"
    assert choose("0.19.0").name == "axolotl-0.19.schema.json"
    assert choose("0.19.0").describe() == "Axolotl 0.19 (generated)"
    assert module.schema_note().startswith("schema: Axolotl 0.")
    far = choose("9.9.0")
    assert far.axolotl == newest_name and "newest" in far.describe() and "9.9.0" in far.describe()
    assert "not installed" in choose(None).describe()


def test_missing_deepspeed_file_is_an_error_and_a_relative_one_is_found_beside_the_config(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    path = write(tmp_path, MINIMAL + "deepspeed: ds_zero3.json\n")
    result = cli("validate", str(path), "--no-axolotl", "--gpu", "none")
    assert result.exit_code == 1
    assert "deepspeed (line 8): deepspeed: ds_zero3.json not found" in result.output
    (tmp_path / "ds_zero3.json").write_text('{"zero_optimization": {"stage": 3}}')
    assert cli("validate", str(path), "--no-axolotl", "--gpu", "none").exit_code == 0


def test_line_map_follows_nested_keys() -> None:
    lines = LineMap("a: 1\nb:\n  c:\n    - x\n    - {d: 2}\n")
    assert lines.line(("a",)) == 1
    assert lines.line(("b", "c", 1, "d")) == 5
    assert lines.line(("b", "c", 0)) == 4
    assert lines.line(("b", "zzz")) == 2  # falls back to the nearest ancestor
