"""config.json checks: non-causal models, missing or broken fields, unknown and
multimodal architectures.
"""

from __future__ import annotations

from typing import Any

import pytest
from model_fixtures import LLAMA_31_8B

from axo_helper.errors import ModelError
from axo_helper.model.facts import from_config


@pytest.mark.parametrize(
    ("config", "shown"),
    [
        ({"model_type": "bert", "architectures": ["BertModel"]}, "BertModel"),
        ({**LLAMA_31_8B, "architectures": ["LlamaForSequenceClassification"]}, "Sequence"),
        ({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}, "T5For"),
        ({"model_type": "vit", "architectures": ["ViTForImageClassification"]}, "ViTFor"),
    ],
)
def test_not_a_causal_lm(config: dict[str, Any], shown: str) -> None:
    with pytest.raises(ModelError) as err:
        from_config(config, name="some/model")
    assert "some/model is not a causal language model (architectures:" in err.value.message
    assert shown in err.value.message
    assert err.value.hint and "ForCausalLM" in err.value.hint


def test_missing_fields_are_named() -> None:
    config = {k: v for k, v in LLAMA_31_8B.items() if k not in ("hidden_size", "vocab_size")}
    with pytest.raises(ModelError) as err:
        from_config(config, name="x")
    assert "hidden_size" in err.value.message and "vocab_size" in err.value.message
    assert "num_hidden_layers" not in err.value.message


def test_non_integer_field_is_refused() -> None:
    with pytest.raises(ModelError, match="num_hidden_layers must be a positive integer"):
        from_config({**LLAMA_31_8B, "num_hidden_layers": "32"}, name="x")


def test_unknown_architecture_falls_back_and_says_so() -> None:
    config = {
        "model_type": "frobnicator",
        "architectures": ["FrobnicatorForCausalLM"],
        "n_embd": 1024,
        "n_layer": 12,
        "n_head": 16,
        "vocab_size": 50000,
        "n_positions": 4096,
    }
    s = from_config(config, name="acme/frob")
    assert s.generic
    assert any("unknown architecture FrobnicatorForCausalLM" in n for n in s.notes)
    assert (s.hidden_size, s.num_layers, s.num_attention_heads) == (1024, 12, 16)
    assert s.intermediate_size == 4 * 1024 and not s.mlp_gated
    assert s.max_position_embeddings == 4096
    gated = from_config({**config, "intermediate_size": 2816}, name="acme/frob")
    assert gated.generic and gated.mlp_gated and gated.intermediate_size == 2816


def test_known_family_is_not_generic() -> None:
    assert not from_config(LLAMA_31_8B, name="x").generic


def test_multimodal_reads_the_language_model() -> None:
    config = {
        "model_type": "llava",
        "architectures": ["LlavaForConditionalGeneration"],
        "text_config": LLAMA_31_8B,
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024},
    }
    s = from_config(config, name="llava")
    assert s.family == "llama" and s.total_params == 8_030_261_248
    assert any("vision encoder is not counted" in n for n in s.notes)
