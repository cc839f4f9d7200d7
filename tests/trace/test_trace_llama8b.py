"""The Llama-3.1-8B LoRA step at full depth: the figure the memory model is held to."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from axo_helper.model.facts import from_config
from axo_helper.model.presets import find_preset
from axo_helper.specs import GIB, TrainSetup
from axo_helper.trace import trace_setup

pytestmark = pytest.mark.slow


def test_llama_8b_lora_step_at_2048_tokens() -> None:
    """LoRA r=16 on every linear, dropout 0, non-reentrant checkpointing, sdpa, micro
    batch 1, 2048 tokens, 32 blocks. A loop that keeps the outputs through backward
    holds 3.96 GiB of the step's own tensors; HF Trainer frees the 16-bit logits
    (128256 x 2048 x 2 bytes = 0.49 GiB) before backward, and the estimate agrees."""
    hit = find_preset("meta-llama/Llama-3.1-8B")
    assert hit is not None
    raw = dict(hit[0].config)
    setup = TrainSetup(
        model=from_config(raw, name="meta-llama/Llama-3.1-8B", source="preset"),
        method="lora",
        lora_r=16,
        lora_dropout=0.0,
        sequence_len=2048,
        gradient_checkpointing=True,
        attn_implementation="sdpa",
    )
    held = trace_setup(raw, setup, hold_outputs=True)
    assert held.traced["step"] / GIB == pytest.approx(3.96, rel=0.05)
    trainer = trace_setup(raw, setup)
    logits = 128256 * 2048 * 2
    assert held.traced["step"] - trainer.traced["step"] == pytest.approx(logits, rel=0.01)
    assert trainer.error("step") is not None and abs(trainer.error("step") or 0) < 0.05
    assert trainer.traced["weights"] / GIB == pytest.approx(15.11, abs=0.01)
