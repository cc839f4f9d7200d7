"""validate: the memory step follows hand edits and says which edit would fit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from render_fixtures import MINIMAL, hand_plan, write

from axo_helper import hardware
from axo_helper import model as model_mod
from axo_helper.config.render import render_plan
from axo_helper.validate.check import validate_text

LLAMA_1B = "meta-llama/Llama-3.2-1B"


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


def test_does_not_fit_exits_3_and_names_a_micro_batch_that_fits(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    pytest.importorskip("axo_helper.memory")
    text = MINIMAL.replace("micro_batch_size: 2", "micro_batch_size: 64") + (
        "sequence_len: 4096\nbf16: true\nadapter: lora\nlora_r: 16\nlora_target_linear: true\n"
        "gradient_checkpointing: true\nattn_implementation: flash_attention_2\n"
    )
    result = cli("validate", str(write(tmp_path, text)), "--no-axolotl", "--gpu", "rtx4090")
    assert result.exit_code == 3, result.output
    assert "does not fit: needs" in result.output
    assert "micro_batch_size" in result.output and "would fit" in result.output
    ok = cli(
        "validate",
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


def test_unknown_gpu_is_a_usage_error(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("validate", str(write(tmp_path, MINIMAL)), "--no-axolotl", "--gpu", "rtx9999")
    assert result.exit_code == 2


def test_a_known_deepspeed_name_without_its_file_is_a_note_and_a_zero3_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Axolotl's examples point at deepspeed_configs/zero3_bf16.json, which `axolotl
    fetch deepspeed_configs` downloads: Axolotl accepts the config, so validate does."""
    pytest.importorskip("axo_helper.memory")
    monkeypatch.chdir(tmp_path)
    hw = hardware.resolve("2x24GB")
    text = MINIMAL + "bf16: true\ndeepspeed: deepspeed_configs/zero3_bf16.json\n"
    report = validate_text(text, config_dir=tmp_path, hardware=hw, run_axolotl=False)
    assert report.valid, [e.format() for e in report.errors]
    note = next(n for n in report.notes if n.startswith("deepspeed:"))
    assert "ZeRO-3" in note and "axolotl fetch deepspeed_configs" in note
    assert report.memory is not None and report.memory.setup is not None
    assert (report.memory.setup.distributed, report.memory.setup.cpu_offload) == ("zero3", False)
    plain = validate_text(MINIMAL + "bf16: true\n", hardware=hw, run_axolotl=False)
    assert plain.memory is not None  # ZeRO-3 shards the weights across the two GPUs
    assert report.memory.breakdown.weights_gib < plain.memory.breakdown.weights_gib


def test_an_unknown_missing_deepspeed_file_stays_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = MINIMAL + "deepspeed: deepspeed_configs/zero4.json\n"
    report = validate_text(
        text, config_dir=tmp_path, hardware=hardware.resolve("24GB"), run_axolotl=False
    )
    assert [(e.path, e.line, e.source) for e in report.errors] == [("deepspeed", 8, "file")]
    assert "memory: not checked (fix the errors above first)" in report.notes
    assert not any(n.startswith("deepspeed:") for n in report.notes)
