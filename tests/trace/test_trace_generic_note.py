"""An architecture estimated from generic config.json fields points to `trace`."""

from __future__ import annotations

import json
from pathlib import Path

FROB = {
    "model_type": "frobnicator",
    "architectures": ["FrobnicatorForCausalLM"],
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 12,
    "num_attention_heads": 16,
    "vocab_size": 50000,
    "max_position_embeddings": 4096,
}


def _model(tmp_path: Path) -> Path:
    folder = tmp_path / "frob"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(FROB))
    return folder


def test_plan_says_trace_gives_an_exact_figure(cli, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(40))
    )
    result = cli("plan", "--gpu", "rtx4090", "--model", str(_model(tmp_path)), "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "model_type 'frobnicator' (FrobnicatorForCausalLM) is not a known architecture" in result.output
    assert "axo-helper trace" in result.output


def test_validate_says_trace_gives_an_exact_figure(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"base_model: {_model(tmp_path)}\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n"
        "lora_target_linear: true\nsequence_len: 512\nmicro_batch_size: 1\n"
        "gradient_accumulation_steps: 1\nnum_epochs: 1\nlearning_rate: 0.0002\n"
        "optimizer: adamw_torch_fused\nbf16: true\noutput_dir: ./out\n"
        "datasets:\n  - path: d.jsonl\n    type: alpaca\n"
    )
    result = cli("validate", str(cfg), "--no-axolotl", "--gpu", "rtx4090")
    assert "axo-helper trace" in result.output, result.output
