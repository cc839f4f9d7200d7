"""LoRA, modules_to_save and trainable parameter counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from memory_fixtures import LLAMA3_LINEARS, LLAMA3_PARAMS, MODEL, H, L, V, setup, tiny_moe

from axo_helper.memory.estimate import estimate
from axo_helper.memory.params import (
    expert_parameters,
    lora_params,
    trainable_params,
    unadapted_weights,
)
from axo_helper.model import inspect as inspect_model


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


def test_target_parameters_count_one_adapter_per_expert_as_param_wrapper_does() -> None:
    # PEFT's ParamWrapper: lora_A is (r * experts) x d_in, lora_B d_out x (r * experts).
    moe = tiny_moe()
    r = 4
    experts = expert_parameters(moe)
    assert experts == ("experts.gate_up_proj", "experts.down_proj")
    attn = lora_params(moe, ("all-linear",), r)
    e, h, w = 4, 256, 512
    wrapped = moe.num_layers * r * e * ((h + 2 * w) + (w + h))
    assert lora_params(moe, ("all-linear",), r, experts) == attn + wrapped
    both = setup(model=moe, lora_r=r, lora_target_parameters=experts, lora_dropout=0.0)
    assert trainable_params(both) == attn + wrapped


def test_unadapted_weights_name_what_no_adapter_reaches() -> None:
    moe = tiny_moe()
    attention_only = setup(model=moe)
    assert unadapted_weights(attention_only) == (
        "gate",
        "experts.gate_up_proj",
        "experts.down_proj",
    )
    experts = setup(model=moe, lora_target_parameters=expert_parameters(moe))
    assert unadapted_weights(experts) == ("gate",)
    assert unadapted_weights(setup()) == ()  # a dense model: every linear adapted
    assert expert_parameters(MODEL) == ()


def test_target_parameters_match_peft_on_a_tiny_mixtral(tmp_path: Path) -> None:
    """The count against PEFT itself, on a real transformers 5 Mixtral (fused experts)."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.MixtralConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    cfg.save_pretrained(tmp_path)
    spec = inspect_model(str(tmp_path))
    torch.manual_seed(0)
    lm = transformers.MixtralForCausalLM(cfg)
    params = list(expert_parameters(spec))
    # What Axolotl hands PEFT for lora_target_linear: its own list of nn.Linear names
    # (q/k/v/o; the router is no nn.Linear), not PEFT's "all-linear" string.
    linear_names = [ls.name for ls in spec.linears if ls.nn_linear]
    adapter = pytest.importorskip("axolotl.loaders.adapter")
    assert sorted(adapter.find_all_linear_names(lm)) == sorted(linear_names)
    lora = peft.LoraConfig(
        r=4, target_modules=linear_names, target_parameters=params, lora_dropout=0.0
    )
    wrapped = peft.get_peft_model(lm, lora)
    trained = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    assert trained == lora_params(spec, ("all-linear",), 4, params)
