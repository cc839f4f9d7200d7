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
