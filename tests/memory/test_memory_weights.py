"""Model weights: 4-bit/8-bit/16-bit bases, the k-bit load peak, MoE experts."""

from __future__ import annotations

import pytest
from memory_fixtures import (
    LLAMA3_LINEARS,
    LLAMA3_PARAMS,
    MODEL,
    H,
    L,
    V,
    llama3_8b,
    setup,
    tiny_moe,
)

from axo_helper.memory.constants import NF4_DQ_BYTES_PER_PARAM
from axo_helper.memory.estimate import estimate
from axo_helper.memory.params import lora_params
from axo_helper.memory.weights import weights
from axo_helper.specs import GIB


def test_nf4_weights_of_8b_are_about_5_gib_with_16bit_embeddings() -> None:
    est = estimate(setup(method="qlora", lora_r=16))
    quantized = L * sum(ls.d_in * ls.d_out for ls in LLAMA3_LINEARS)
    lower = (quantized * 0.5 + (LLAMA3_PARAMS - quantized) * 2) / GIB  # bare 4 bits
    assert 5.0 < est.weights_gib < 6.0
    assert est.weights_gib > lower
    # Embeddings stay 16-bit: the same model with tied embeddings is lighter by V*h*2 bytes.
    tied = estimate(
        setup(
            model=llama3_8b(tie_word_embeddings=True, total_params=LLAMA3_PARAMS - V * H),
            method="qlora",
        )
    )
    assert est.weights_gib - tied.weights_gib == pytest.approx(V * H * 2 / GIB, rel=1e-6)


@pytest.mark.parametrize(
    ("kw", "bytes_per_param"),
    [
        ({"method": "lora", "precision": "bf16"}, 2.0),
        ({"method": "lora", "precision": "fp32"}, 4.0),
        ({"method": "lora", "load_in_8bit": True}, None),  # checked against bf16 below
    ],
)
def test_base_weights_by_precision(kw: dict[str, object], bytes_per_param: float | None) -> None:
    w = weights(setup(**kw)).gpu
    adapters = lora_params(MODEL, ("all-linear",), 16) * 4  # fp32 adapters
    base = w - adapters
    if bytes_per_param is not None:
        assert base == pytest.approx(LLAMA3_PARAMS * bytes_per_param)
    else:
        bf16 = weights(setup(method="lora")).gpu - adapters
        # int8 linears: roughly half the 16-bit base, embeddings still 16-bit
        assert 0.5 * bf16 < base < 0.65 * bf16


def test_kbit_load_peak_is_the_fp32_upcast() -> None:
    w = weights(setup(method="qlora"))
    rest = LLAMA3_PARAMS - MODEL.linear_params
    assert w.load_peak - w.gpu == pytest.approx(rest * (4 - 2))


def test_moe_qlora_experts_stay_fp32_unless_quantized() -> None:
    moe = tiny_moe()
    experts = moe.num_layers * sum(
        ls.d_in * ls.d_out * ls.count for ls in moe.linears if "experts" in ls.name
    )
    plain = weights(setup(model=moe, method="qlora", lora_targets=("q_proj",)))
    quant = weights(
        setup(model=moe, method="qlora", lora_targets=("q_proj",), quantize_moe_experts=True)
    )
    # fp32 experts (4 B) versus NF4 (~0.52 B)
    assert plain.gpu - quant.gpu == pytest.approx(experts * (4 - NF4_DQ_BYTES_PER_PARAM), rel=0.01)
    assert any("quantize_moe_experts" in n for n in plain.notes)
