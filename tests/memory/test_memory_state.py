"""Trainable state: gradients, optimizer states and their step temporaries."""

from __future__ import annotations

import pytest
from memory_fixtures import LLAMA3_PARAMS, MODEL, setup, total

from axo_helper.memory.estimate import estimate
from axo_helper.memory.params import lora_params
from axo_helper.memory.state import trainable_state
from axo_helper.memory.weights import weights
from axo_helper.specs import GIB


def test_full_finetune_8b_adamw() -> None:
    # Mixed precision with an fp32 master (ZeRO paper: 16 B/param) exceeds 100 GiB: DeepSpeed
    # on one GPU, or fp32 training (4 + 4 + 8 B/param).
    assert total(method="full", distributed="zero3", num_gpus=1) > 100
    assert total(method="full", precision="fp32") > 100
    # Axolotl's bf16 path trains bf16 weights with bf16 AdamW moments: 2 + 2 + 4 B/param,
    # still more than an 80 GB card once activations are added at long sequences.
    est = estimate(setup(method="full"))
    assert est.weights_gib + est.trainable_state_gib >= 8 * LLAMA3_PARAMS / GIB
    assert est.weights_gib + est.trainable_state_gib < 16 * LLAMA3_PARAMS / GIB


def test_lora_adapters_cost_16_bytes_per_param_with_adamw() -> None:
    n = lora_params(MODEL, ("all-linear",), 64)
    st = trainable_state(setup(lora_r=64, optimizer="adamw_torch_fused"))
    assert st.gpu == pytest.approx(n * (4 + 8))  # fp32 grad + two fp32 moments
    w = weights(setup(lora_r=64)).gpu - LLAMA3_PARAMS * 2
    assert w == pytest.approx(n * 4)  # the fp32 adapter itself


@pytest.mark.parametrize(
    ("small", "large"),
    [
        ("adamw_bnb_8bit", "adamw_torch_fused"),
        ("paged_adamw_8bit", "paged_adamw_32bit"),
        ("adamw_torch_4bit", "adamw_torch_8bit"),
        ("lion_8bit", "lion_32bit"),
        ("lion_32bit", "ademamix"),
        ("adafactor", "adamw_torch_fused"),
        ("sgd", "lion_32bit"),
    ],
)
def test_smaller_optimizer_states(small: str, large: str) -> None:
    a = trainable_state(setup(method="full", optimizer=small))
    b = trainable_state(setup(method="full", optimizer=large))
    assert a.gpu < b.gpu


def test_paged_state_is_counted_but_not_allocated() -> None:
    paged = estimate(setup(method="qlora", optimizer="paged_adamw_32bit"))
    plain = estimate(setup(method="qlora", optimizer="adamw_torch_fused"))
    assert paged.trainable_state_gib == pytest.approx(plain.trainable_state_gib)
    assert paged.allocated_gib < plain.allocated_gib
    assert any("paged" in n for n in paged.notes)


def test_unknown_optimizer_is_planned_as_adamw_and_noted() -> None:
    odd = estimate(setup(optimizer="shiny_new_opt"))
    adamw = estimate(setup(optimizer="adamw_torch"))
    assert odd.total_gib == pytest.approx(adamw.total_gib)
    assert any("shiny_new_opt" in n for n in odd.notes)


def test_foreach_adamw_step_temporaries_exceed_fused() -> None:
    foreach = trainable_state(setup(method="full", optimizer="adamw_torch"))
    fused = trainable_state(setup(method="full", optimizer="adamw_torch_fused"))
    assert fused.step_temp == 0
    assert foreach.step_temp > 0
