"""A local checkpoint folder: config.json, chat templates, and the errors around it."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import LLAMA_31_8B, write

from axo_helper.errors import EXIT_FAILURE, EXIT_USAGE, ModelError
from axo_helper.model import inspect


def test_local_directory(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    write(folder, "config.json", {**LLAMA_31_8B, "_name_or_path": "meta-llama/Llama-3.1-8B"})
    write(folder, "tokenizer_config.json", {"chat_template": "{{ messages }}"})
    s = inspect(str(folder))
    assert s.source == "local"
    assert s.local_path == str(folder.resolve())
    assert s.hf_id == "meta-llama/Llama-3.1-8B"
    assert s.chat_template is True
    assert s.total_params == 8_030_261_248


def test_local_directory_chat_template_jinja_and_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write(plain, "config.json", {**LLAMA_31_8B, "_name_or_path": "/home/me/ckpt"})
    write(plain, "tokenizer_config.json", {"bos_token": "<s>"})
    s = inspect(str(plain))
    assert s.chat_template is False and s.hf_id is None
    write(plain, "chat_template.jinja", "{{ messages }}")
    assert inspect(str(plain)).chat_template is True


def test_local_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        inspect(str(tmp_path))
    assert err.value.message == f"model directory {tmp_path} has no config.json"
    assert err.value.exit_code == EXIT_USAGE
    assert err.value.hint and "config.json" in err.value.hint


def test_adapter_directory_hint(tmp_path: Path) -> None:
    write(tmp_path, "adapter_config.json", {"base_model_name_or_path": "x/y"})
    with pytest.raises(ModelError) as err:
        inspect(str(tmp_path))
    assert err.value.hint and "LoRA adapter" in err.value.hint


def test_local_not_causal(tmp_path: Path) -> None:
    write(tmp_path, "config.json", {"model_type": "bert", "architectures": ["BertModel"]})
    with pytest.raises(ModelError) as err:
        inspect(str(tmp_path))
    assert "is not a causal language model (architectures: BertModel)" in err.value.message
    assert err.value.exit_code == EXIT_FAILURE


def test_local_broken_json(tmp_path: Path) -> None:
    write(tmp_path, "config.json", "{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        inspect(str(tmp_path))


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        inspect(str(tmp_path / "nope"))
    assert "does not exist" in err.value.message and err.value.exit_code == EXIT_USAGE


def test_qwen_moe_saved_by_transformers_5(tmp_path: Path) -> None:
    """transformers 5 saves a Qwen MoE's expert count as num_local_experts (its
    attribute_map); the hub's files say num_experts. Both read the same."""
    base = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "model_type": "qwen3_moe",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": 1000,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 2048,
    }
    write(tmp_path / "hub", "config.json", {**base, "num_experts": 8})
    write(tmp_path / "saved", "config.json", {**base, "num_local_experts": 8})
    hub, saved = inspect(str(tmp_path / "hub")), inspect(str(tmp_path / "saved"))
    assert saved.num_experts == hub.num_experts == 8
    assert saved.total_params == hub.total_params
    write(tmp_path / "none", "config.json", base)
    with pytest.raises(ModelError, match="num_experts"):
        inspect(str(tmp_path / "none"))
