"""Parameter counts and layouts per family, against published sizes and the dev set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from model_fixtures import preset_files

from axo_helper.model import inspect
from axo_helper.model.facts import from_config, from_dev_facts
from axo_helper.resources import load_preset
from axo_helper.specs import ModelSpec

DEV_MODELS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "vram-dev-models.json"


def _lora_params(spec: ModelSpec, r: int) -> int:
    """r * sum(d_in + d_out) over the nn.Linear modules LoRA all-linear adapts."""
    per_layer = sum((ls.d_in + ls.d_out) * ls.count for ls in spec.linears if ls.nn_linear)
    return r * per_layer * spec.num_layers


@pytest.mark.parametrize("rel", preset_files())
def test_parameter_count_matches_published_size(rel: str) -> None:
    raw = load_preset(rel)
    spec = from_config(raw["config"], name=raw["hf_id"], source="preset")
    assert spec.total_params / 1e9 == pytest.approx(raw["params_b"], rel=0.02)
    if "active_params_b" in raw:
        assert spec.active_params / 1e9 == pytest.approx(raw["active_params_b"], rel=0.02)
    else:
        assert spec.active_params == spec.total_params


@pytest.mark.parametrize(
    ("name", "total_b", "active_b"),
    [
        ("meta-llama/Llama-3.1-8B", 8.03, 8.03),
        ("Qwen/Qwen2.5-7B", 7.62, 7.62),
        ("mistralai/Mixtral-8x7B-v0.1", 46.7, 12.9),
        ("google/gemma-2-9b", 9.24, 9.24),
        ("Qwen/Qwen2.5-0.5B", 0.494, 0.494),
        ("Qwen/Qwen3-30B-A3B", 30.5, 3.3),
    ],
)
def test_headline_sizes(name: str, total_b: float, active_b: float) -> None:
    spec = inspect(name)
    assert spec.total_params / 1e9 == pytest.approx(total_b, rel=0.02)
    assert spec.active_params / 1e9 == pytest.approx(active_b, rel=0.02)


def test_exact_counts_of_two_well_known_checkpoints() -> None:
    # Llama-3.1-8B and Qwen2.5-0.5B (tied) as PyTorch reports them.
    assert inspect("meta-llama/Llama-3.1-8B").total_params == 8_030_261_248
    assert inspect("Qwen/Qwen2.5-0.5B").total_params == 494_032_768


def test_lora_all_linear_r16_llama_31_8b() -> None:
    spec = inspect("meta-llama/Llama-3.1-8B")
    assert [ls.name for ls in spec.linears] == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    assert _lora_params(spec, 16) == 41_943_040


def test_llama_31_8b_facts() -> None:
    s = inspect("meta-llama/Llama-3.1-8B")
    facts = (
        s.hidden_size,
        s.intermediate_size,
        s.num_layers,
        s.num_attention_heads,
        s.num_kv_heads,
        s.head_dim,
        s.vocab_size,
        s.tie_word_embeddings,
        s.max_position_embeddings,
        s.family,
        s.architecture,
    )
    assert facts == (
        4096,
        14336,
        32,
        32,
        8,
        128,
        128256,
        False,
        131072,
        "llama",
        "LlamaForCausalLM",
    )


# --------------------------------------------------------------------------- families
def test_qwen2_counts_qkv_biases() -> None:
    cfg = dict(load_preset("models/qwen2.5-0.5b.yaml")["config"])
    with_bias = from_config(cfg, name="q").total_params
    as_mistral = from_config(
        {**cfg, "model_type": "mistral", "architectures": ["MistralForCausalLM"]}, name="m"
    ).total_params
    # q: 896, k: 128, v: 128 bias elements per layer, 24 layers
    assert with_bias - as_mistral == 24 * (896 + 128 + 128)


def test_phi3_uses_fused_module_names() -> None:
    s = inspect("microsoft/phi-4")
    shapes = {ls.name: (ls.d_in, ls.d_out) for ls in s.linears}
    assert shapes == {
        "qkv_proj": (5120, 5120 + 2 * 10 * 128),
        "o_proj": (5120, 5120),
        "gate_up_proj": (5120, 2 * 17920),
        "down_proj": (17920, 5120),
    }


def test_mixtral_experts_are_fused_tensors_outside_all_linear() -> None:
    s = inspect("mistralai/Mixtral-8x7B-v0.1")
    experts = [ls for ls in s.linears if ls.count > 1]
    assert {ls.name for ls in experts} == {"experts.gate_up_proj", "experts.down_proj"}
    assert all(ls.count == 8 and not ls.nn_linear for ls in experts)
    assert (s.num_experts, s.experts_per_token, s.intermediate_size) == (8, 2, 14336)
    # all-linear LoRA adapts attention only under transformers 5
    assert {ls.name for ls in s.linears if ls.nn_linear} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    # k-bit loading quantizes the attention linears only
    assert s.linear_params == 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024)
    assert any("quantize_moe_experts" in n for n in s.notes)


def test_qwen2_moe_has_a_shared_expert() -> None:
    s = inspect("Qwen/Qwen1.5-MoE-A2.7B")
    names = [ls.name for ls in s.linears if ls.nn_linear]
    assert names == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
        "shared_expert_gate",
    ]
    assert s.shared_expert_intermediate_size == 5632
    assert s.intermediate_size == 1408  # per routed expert


def test_gemma2_head_dim_is_read_not_derived() -> None:
    s = inspect("google/gemma-2-9b")
    assert s.head_dim == 256 != s.hidden_size // s.num_attention_heads
    q = next(ls for ls in s.linears if ls.name == "q_proj")
    assert (q.d_in, q.d_out) == (3584, 16 * 256)


# --------------------------------------------------------------------------- dev facts
def _dev_entries() -> dict[str, dict[str, Any]]:
    return json.loads(DEV_MODELS.read_text(encoding="utf-8"))


def test_dev_models_match_their_params() -> None:
    entries = _dev_entries()
    assert entries
    for key, entry in entries.items():
        spec = from_dev_facts(entry, key)
        assert spec.total_params / 1e9 == pytest.approx(entry["params_b"], rel=0.005), key
        assert spec.hf_id == entry["hf_id"]


def test_qwen1_and_phi15_layouts() -> None:
    qwen = from_config(
        {
            "architecture": "QWenLMHeadModel",
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "vocab_size": 151936,
            "tie_word_embeddings": False,
            "max_position_embeddings": 8192,
        },
        name="Qwen/Qwen-1_8B",
    )
    assert qwen.family == "qwen" and qwen.num_kv_heads == 16
    assert [(ls.name, ls.d_in, ls.d_out) for ls in qwen.linears] == [
        ("c_attn", 2048, 3 * 2048),
        ("c_proj", 2048, 2048),
        ("w1", 2048, 5504),
        ("w2", 2048, 5504),
        ("c_proj", 5504, 2048),
    ]
    phi = from_config(
        {
            "model_type": "phi",
            "architectures": ["PhiForCausalLM"],
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 24,
            "num_attention_heads": 32,
            "vocab_size": 51200,
            "max_position_embeddings": 2048,
        },
        name="microsoft/phi-1_5",
    )
    assert not phi.mlp_gated and not phi.tie_word_embeddings
    assert [ls.name for ls in phi.linears] == ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]
    assert phi.total_params / 1e9 == pytest.approx(1.418, rel=0.005)
