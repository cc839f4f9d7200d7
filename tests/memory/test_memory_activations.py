"""Activations (checkpointing, attention kernels, GQA, dropout, MoE) and logits."""

from __future__ import annotations

import dataclasses

import pytest
from memory_fixtures import H, L, V, llama3_8b, setup, tiny_moe

from axo_helper.memory.activations import activations, logits_bytes
from axo_helper.memory.estimate import estimate
from axo_helper.specs import GIB


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
@pytest.mark.parametrize("attn", ["flash_attention_2", "sdpa", "eager"])
def test_gradient_checkpointing_lowers_activations(method: str, attn: str) -> None:
    on = estimate(setup(method=method, attn_implementation=attn, sequence_len=4096))
    off = estimate(
        setup(
            method=method,
            attn_implementation=attn,
            sequence_len=4096,
            gradient_checkpointing=False,
        )
    )
    assert on.activations_gib + on.logits_gib < off.activations_gib + off.logits_gib
    # checkpointing keeps about one hidden state per layer per token
    kept = L * H * 2 * 4096 / GIB
    assert on.activations_gib + on.logits_gib >= kept


def _act(attn: str, seq: int) -> float:
    est = estimate(setup(attn_implementation=attn, sequence_len=seq, gradient_checkpointing=False))
    return est.activations_gib + est.logits_gib


def test_flash_attention_is_linear_in_sequence_length_eager_is_not() -> None:
    # linear in s: equal steps per 2048 tokens (the intercept is autocast's 16-bit copies
    # of the fp32 LoRA weights, which do not depend on the tokens)
    step_up = _act("flash_attention_2", 4096) - _act("flash_attention_2", 2048)
    assert _act("flash_attention_2", 6144) - _act("flash_attention_2", 4096) == pytest.approx(step_up)
    intercept = _act("flash_attention_2", 2048) - step_up
    assert 0 <= intercept < 0.1 * step_up
    # eager's extra over flash is the s^2 term: doubling s quadruples it
    extra_2k = _act("eager", 2048) - _act("flash_attention_2", 2048)
    extra_4k = _act("eager", 4096) - _act("flash_attention_2", 4096)
    assert extra_4k / extra_2k > 3.5


def test_gqa_saves_less_than_multi_head_attention() -> None:
    mha = llama3_8b(num_kv_heads=32)
    gqa_act = _act("flash_attention_2", 2048)
    est = estimate(setup(model=mha, sequence_len=2048, gradient_checkpointing=False))
    assert est.activations_gib + est.logits_gib > gqa_act


def test_lora_dropout_keeps_a_copy_of_adapted_inputs() -> None:
    no_gc = {"gradient_checkpointing": False}
    with_dropout = activations(setup(lora_dropout=0.05, **no_gc)).saved
    without = activations(setup(lora_dropout=0.0, **no_gc)).saved
    assert with_dropout > without


def test_moe_activations_scale_with_experts_per_token() -> None:
    moe = tiny_moe()
    top2 = activations(setup(model=moe, gradient_checkpointing=False)).saved
    top1 = activations(
        setup(model=dataclasses.replace(moe, experts_per_token=1), gradient_checkpointing=False)
    ).saved
    assert top2 > top1


# --------------------------------------------------------------------------- logits
def test_logits_are_twelve_bytes_per_vocab_entry_per_token() -> None:
    s = setup(sequence_len=2048, micro_batch_size=2)
    assert logits_bytes(s) == 2 * 2048 * V * 12


def test_fused_cross_entropy_lowers_logits() -> None:
    plain = estimate(setup(sequence_len=4096))
    fused = estimate(setup(sequence_len=4096, fused_cross_entropy=True))
    assert fused.logits_gib < plain.logits_gib / 10
    assert fused.total_gib < plain.total_gib
