"""validate --model: the memory check's architecture when base_model does not resolve offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from render_fixtures import MINIMAL, write

from axo_helper.model.presets import find_preset

# Axolotl's examples/llama-3 use this id: not a shipped preset, not cached (hub offline).
UNKNOWN_OFFLINE = "NousResearch/Meta-Llama-3-8B"
TEXT = MINIMAL.replace("meta-llama/Llama-3.2-1B", UNKNOWN_OFFLINE) + "bf16: true\nadapter: lora\n"


def _validate(cli: Callable[..., Result], path: Path, *extra: str) -> tuple[Result, dict]:
    result = cli("validate", str(path), "--no-axolotl", "--gpu", "24GB", "--json", *extra)
    return result, json.loads(result.stdout)


def _memory_note(report: dict) -> str:
    return next(n for n in report["notes"] if n.startswith("memory:"))


def test_unknown_base_model_with_model_gets_an_estimate_and_says_why(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    pytest.importorskip("axo_helper.memory")
    result, report = _validate(cli, write(tmp_path, TEXT), "--model", "meta-llama/Llama-3.1-8B")
    assert result.exit_code in (0, 3), result.output
    assert report["valid"] and report["memory"] is not None
    assert report["memory"]["trainable_params"] > 0
    note = _memory_note(report)
    assert note.startswith("memory: architecture from --model meta-llama/Llama-3.1-8B")
    assert f"base_model {UNKNOWN_OFFLINE}" in note and "not a shipped preset" in note


def test_unknown_base_model_without_model_says_to_pass_it(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result, report = _validate(cli, write(tmp_path, TEXT))
    assert result.exit_code == 0, result.output  # valid; the fit is just not checked
    assert report["memory"] is None
    note = _memory_note(report)
    assert note.startswith(f"memory: not checked (base_model {UNKNOWN_OFFLINE}")
    assert "pass --model ID_OR_DIR" in note and "meta-llama/" in note


def test_a_resolvable_base_model_wins_over_model(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    pytest.importorskip("axo_helper.memory")
    path = write(tmp_path, MINIMAL + "bf16: true\nadapter: lora\n")
    _, with_model = _validate(cli, path, "--model", "meta-llama/Llama-3.1-8B")
    _, without = _validate(cli, path)
    assert with_model["memory"]["total_gib"] == without["memory"]["total_gib"]
    assert _memory_note(with_model) == (
        "memory: architecture from base_model meta-llama/Llama-3.2-1B "
        "(a shipped preset; --model meta-llama/Llama-3.1-8B not needed)"
    )


def test_model_that_does_not_resolve_is_a_usage_error(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result = cli(
        "validate", str(write(tmp_path, TEXT)), "--no-axolotl", "--model", "./no-such-model"
    )
    assert result.exit_code == 2, result.output
    assert "error: model directory ./no-such-model does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_presets_match_ids_that_differ_only_by_org() -> None:
    """What model.presets matches on its own (no --model needed), and what it does not:
    Meta-Llama-3-8B is not Llama-3.1-8B, so Axolotl's llama-3 examples need --model."""
    hit = find_preset("NousResearch/Llama-3.2-1B")
    assert hit is not None and hit[0].hf_id == "meta-llama/Llama-3.2-1B"
    assert find_preset(UNKNOWN_OFFLINE) is None
