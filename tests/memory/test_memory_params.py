"""LoRA, modules_to_save and trainable parameter counts."""

from __future__ import annotations

import pytest
from memory_fixtures import LLAMA3_LINEARS, LLAMA3_PARAMS, MODEL, H, L, V, setup, tiny_moe

from axo_helper.memory.estimate import estimate
from axo_helper.memory.params import lora_params, trainable_params


def test_llama3_fixture_matches_published_parameter_count() -> None:
    # Meta's model card / transformers num_parameters(): 8,030,261,248.
    assert LLAMA3_PARAMS == 8_030_261_248


# --------------------------------------------------------------------------- LoRA params
def test_lora_params_llama3_8b_r16_all_linear() -> None:
    # PEFT print_trainable_parameters() for Llama-3-8B, r=16, all-linear.
    assert lora_params(MODEL, ("all-linear",), 16) == 41_943_040


@pytest.mark.parametrize(
    ("targets", "names"),
    [
        (("q_proj", "v_proj"), ("q_proj", "v_proj")),
        (("q_proj", "k_proj", "v_proj", "o_proj"), ("q_proj", "k_proj", "v_proj", "o_proj")),
        (("self_attn.q_proj",), ("q_proj",)),  # dotted suffixes match like PEFT
        (("gate_proj", "up_proj", "down_proj"), ("gate_proj", "up_proj", "down_proj")),
        (("nonexistent",), ()),
    ],
)
def test_lora_params_by_name(targets: tuple[str, ...], names: tuple[str, ...]) -> None:
    r = 8
    shapes = {ls.name: ls for ls in LLAMA3_LINEARS}
    expected = L * r * sum(shapes[n].d_in + shapes[n].d_out for n in names)
    assert lora_params(MODEL, targets, r) == expected


def test_lora_params_scale_with_rank() -> None:
    assert lora_params(MODEL, ("all-linear",), 64) == 4 * lora_params(MODEL, ("all-linear",), 16)


def test_moe_all_linear_skips_fused_experts_but_named_targets_count_them() -> None:
    moe = tiny_moe()
    r = 4
    attn = sum(ls.d_in + ls.d_out for ls in moe.linears[:4])
    assert lora_params(moe, ("all-linear",), r) == moe.num_layers * r * attn
    gate_up = moe.linears[5]
    assert lora_params(moe, ("experts.gate_up_proj",), r) == (
        moe.num_layers * r * (gate_up.d_in + gate_up.d_out) * gate_up.count
    )


def test_modules_to_save_add_full_embedding_copies() -> None:
    s = setup(lora_modules_to_save=("embed_tokens", "lm_head"))
    expected = lora_params(MODEL, s.lora_targets, s.lora_r) + 2 * V * H
    assert trainable_params(s) == expected
    assert trainable_params(setup(method="full")) == LLAMA3_PARAMS


def test_unknown_modules_to_save_is_noted_not_counted() -> None:
    est = estimate(setup(lora_modules_to_save=("mystery_head",)))
    assert est.trainable_params == lora_params(MODEL, ("all-linear",), 16)
    assert any("mystery_head" in n for n in est.notes)
