"""`axo-helper trace`: a config's real step on fake tensors, with stable JSON keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("peft")

PHASES = {"forward", "loss", "backward", "optimizer"}
COMPONENTS = {"weights", "state", "activations", "logits", "step", "allocated"}


def _config(tmp_path: Path, base: str, **extra: object) -> Path:
    cfg = {
        "base_model": base,
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target_linear": True,
        "sequence_len": 128,
        "micro_batch_size": 2,
        "gradient_checkpointing": True,
        "bf16": True,
        "sdp_attention": True,
        "datasets": [{"path": "data.jsonl", "type": "alpaca"}],
        **extra,
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_trace_json_on_a_local_model(cli, tiny_model: Path, tmp_path: Path) -> None:
    result = cli("trace", str(_config(tmp_path, str(tiny_model))), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["traced_gib"]) == COMPONENTS == set(out["estimated_gib"]) == set(out["error"])
    assert set(out["phase_peak_gib"]) >= PHASES
    assert out["traced_gib"]["weights"] > 0 and out["traced_gib"]["step"] > 0
    # the loss over the vocabulary is part of the step, and it is the head's
    assert out["traced_gib"]["logits"] > 0
    assert out["peak_phase"] in PHASES | {"backward:blocks", "backward:embeddings"}
    assert out["model"] == str(tiny_model)


def test_trace_text_and_a_shorter_model(cli, tmp_path: Path) -> None:
    """A shipped preset by id, two blocks: the table and the phase line."""
    path = _config(tmp_path, "Qwen/Qwen2.5-0.5B")
    result = cli("trace", str(path), "--layers", "2")
    assert result.exit_code == 0, result.output
    assert "2 blocks" in result.stdout
    assert "peak (allocated)" in result.stdout and "gradients + optimizer" in result.stdout
    full = json.loads(cli("trace", str(path), "--layers", "2", "--json").stdout)
    held = json.loads(cli("trace", str(path), "--layers", "2", "--json", "--hold-outputs").stdout)
    # holding the outputs keeps the 16-bit logits (2 bytes x vocabulary x tokens) alive
    extra = held["traced_gib"]["step"] - full["traced_gib"]["step"]
    assert extra == pytest.approx(2 * 151936 * 256 / 2**30, rel=0.02)


def test_trace_without_base_model_is_a_clear_error(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("adapter: lora\nsequence_len: 128\n")
    result = cli("trace", str(path))
    assert result.exit_code == 1
    assert "no base_model" in result.output and "--model" in result.output
    assert "Traceback" not in result.output


def test_activation_offloading_is_said_and_compared_without_it(cli, tmp_path: Path) -> None:
    """TRL's offloader moves CUDA tensors only: the trace says so and compares the
    device-resident step with the estimate without offloading."""
    plain = _config(tmp_path, "Qwen/Qwen2.5-0.5B")
    base = json.loads(cli("trace", str(plain), "--layers", "2", "--json").stdout)
    off = _config(tmp_path, "Qwen/Qwen2.5-0.5B", activation_offloading=True)
    result = cli("trace", str(off), "--layers", "2", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert any("activation_offloading is not traced" in n for n in out["notes"])
    assert out["estimated_gib"] == base["estimated_gib"]
    assert out["traced_gib"] == pytest.approx(base["traced_gib"], rel=1e-6)


def test_selective_checkpointing_is_traced_through_axolotls_save_policy(
    cli, tmp_path: Path
) -> None:
    """Axolotl's own apply_selective_checkpointing on the real step: the attention
    outputs it keeps are what the estimate adds, byte for byte within 2%."""
    base = {"flash_attention": True, "sdp_attention": False, "sequence_len": 512}
    plain = json.loads(
        cli("trace", str(_config(tmp_path, "Qwen/Qwen2.5-0.5B", **base)), "--layers", "2",
            "--json").stdout
    )
    sel = _config(tmp_path, "Qwen/Qwen2.5-0.5B", selective_checkpointing=True, **base)
    result = cli("trace", str(sel), "--layers", "2", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert any("selective checkpointing" in n for n in out["notes"])
    traced = out["traced_gib"]["activations"] - plain["traced_gib"]["activations"]
    estimated = out["estimated_gib"]["activations"] - plain["estimated_gib"]["activations"]
    # 2 blocks x 2 x 512 tokens x 14 heads x (64 x 2 + 4) bytes
    assert traced == pytest.approx(2 * 1024 * 14 * 132 / 2**30, rel=0.02)
    assert estimated == pytest.approx(traced, rel=0.02)
