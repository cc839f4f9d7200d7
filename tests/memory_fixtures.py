"""Model and setup builders for the memory-model tests (tests/memory/).

Expected values in those tests are derived from the architecture (or are published
counts, named where used), never copied from the estimator's output.
"""

from __future__ import annotations

import dataclasses

from axo_helper.memory.estimate import estimate
from axo_helper.specs import LinearShape, ModelSpec, TrainSetup

H, FFN, L, V = 4096, 14336, 32, 128256  # Llama-3-8B config.json
LLAMA3_LINEARS = (
    LinearShape("q_proj", H, H),
    LinearShape("k_proj", H, 1024),
    LinearShape("v_proj", H, 1024),
    LinearShape("o_proj", H, H),
    LinearShape("gate_proj", H, FFN),
    LinearShape("up_proj", H, FFN),
    LinearShape("down_proj", FFN, H),
)
_BLOCK = sum(ls.d_in * ls.d_out for ls in LLAMA3_LINEARS) + 2 * H  # + two RMSNorms
LLAMA3_PARAMS = 2 * V * H + L * _BLOCK + H  # untied embeddings + blocks + final norm


def llama3_8b(**overrides: object) -> ModelSpec:
    spec = ModelSpec(
        name="meta-llama/Meta-Llama-3-8B",
        model_type="llama",
        architecture="LlamaForCausalLM",
        family="llama",
        hidden_size=H,
        intermediate_size=FFN,
        num_layers=L,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        vocab_size=V,
        tie_word_embeddings=False,
        max_position_embeddings=8192,
        total_params=LLAMA3_PARAMS,
        active_params=LLAMA3_PARAMS,
        linears=LLAMA3_LINEARS,
    )
    return dataclasses.replace(spec, **overrides)  # type: ignore[arg-type]


def tiny_moe() -> ModelSpec:
    """A Mixtral-shaped toy: 4 experts, 2 per token, fused expert tensors (transformers 5)."""
    h, w, e = 256, 512, 4
    linears = (
        LinearShape("q_proj", h, h),
        LinearShape("k_proj", h, 64),
        LinearShape("v_proj", h, 64),
        LinearShape("o_proj", h, h),
        LinearShape("gate", h, e, nn_linear=False),
        LinearShape("experts.gate_up_proj", h, 2 * w, count=e, nn_linear=False),
        LinearShape("experts.down_proj", w, h, count=e, nn_linear=False),
    )
    block = sum(ls.d_in * ls.d_out * ls.count for ls in linears) + 2 * h
    total = 2 * 1000 * h + 4 * block + h
    return ModelSpec(
        name="toy-moe",
        model_type="mixtral",
        architecture="MixtralForCausalLM",
        family="mixtral",
        hidden_size=h,
        intermediate_size=w,
        num_layers=4,
        num_attention_heads=4,
        num_kv_heads=1,
        head_dim=64,
        vocab_size=1000,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
        total_params=total,
        active_params=total - 4 * (e - 2) * 3 * h * w,
        linears=linears,
        num_experts=e,
        experts_per_token=2,
    )


MODEL = llama3_8b()


def setup(**kw: object) -> TrainSetup:
    base: dict[str, object] = {"model": MODEL, "attn_implementation": "flash_attention_2"}
    base.update(kw)
    return TrainSetup(**base)  # type: ignore[arg-type]


def total(**kw: object) -> float:
    return estimate(setup(**kw)).total_gib
