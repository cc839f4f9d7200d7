"""Shipped model presets: every file, name matching, instruct variants, imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from model_fixtures import preset_files

from axo_helper.model import inspect
from axo_helper.model.presets import _loose, _presets, list_presets
from axo_helper.resources import load_preset


def test_presets_ship_with_the_package() -> None:
    files = preset_files()
    assert len(files) >= 22
    required = {"hf_id", "aliases", "chat_template", "source", "notes", "config"}
    config_keys = {
        "model_type",
        "architectures",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "tie_word_embeddings",
        "max_position_embeddings",
        "torch_dtype",
    }
    for rel in files:
        raw = load_preset(rel)
        assert required <= set(raw), rel
        assert isinstance(raw["chat_template"], bool), rel
        assert config_keys <= set(raw["config"]), rel
        assert raw["params_b"] > 0, rel


@pytest.mark.parametrize(
    "hf_id",
    [
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-70B",
        "meta-llama/Llama-3.2-1B",
        "meta-llama/Llama-3.2-3B",
        "meta-llama/Llama-3.3-70B-Instruct",
        "mistralai/Mistral-7B-v0.3",
        "mistralai/Mixtral-8x7B-v0.1",
        *(f"Qwen/Qwen2.5-{s}" for s in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")),
        *(f"Qwen/Qwen3-{s}" for s in ("0.6B", "1.7B", "4B", "8B", "14B", "32B")),
        "google/gemma-2-2b",
        "google/gemma-2-9b",
        "google/gemma-2-27b",
        "microsoft/Phi-3.5-mini-instruct",
        "microsoft/phi-4",
        "HuggingFaceTB/SmolLM2-135M",
        "HuggingFaceTB/SmolLM2-360M",
        "HuggingFaceTB/SmolLM2-1.7B",
        "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
    ],
)
def test_issue_models_resolve_offline_from_presets(hf_id: str) -> None:
    spec = inspect(hf_id)
    assert spec.source == "preset"
    assert spec.hf_id == hf_id
    assert not spec.generic


def test_every_preset_yields_sane_facts() -> None:
    specs = list_presets()
    assert len(specs) == len(preset_files())
    for s in specs:
        assert s.source == "preset" and not s.generic and s.family, s.name
        assert s.num_attention_heads % s.num_kv_heads == 0, s.name
        assert s.head_dim in (64, 96, 128, 256), s.name
        assert s.max_position_embeddings >= 2048, s.name
        assert s.vocab_size >= 32000, s.name
        assert len(s.linears) >= 4, s.name
        # blocks hold most parameters; embeddings alone never reach the total
        assert s.embedding_params < s.total_params, s.name
        assert s.active_params <= s.total_params, s.name
        assert s.is_moe == (s.active_params < s.total_params), s.name


def test_preset_names_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for p in _presets():
        for n in (p.hf_id, p.key, *p.aliases, *p.instruct):
            key = _loose(n)
            assert seen.setdefault(key, p.key) == p.key, f"{n} matches {seen[key]} and {p.key}"


@pytest.mark.parametrize(
    "spelling",
    ["Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-8B", "llama3.1-8b", "LLAMA-3.1-8B", "llama_3.1_8b"],
)
def test_loose_spellings_find_the_preset(spelling: str) -> None:
    spec = inspect(spelling)
    assert spec.source == "preset"
    assert spec.total_params == 8_030_261_248
    assert spec.name == spelling


def test_short_alias_keeps_the_canonical_hf_id() -> None:
    assert inspect("llama3.1-8b").hf_id == "meta-llama/Llama-3.1-8B"
    assert inspect("meta-llama/Meta-Llama-3.1-8B").hf_id == "meta-llama/Meta-Llama-3.1-8B"


@pytest.mark.parametrize(
    ("typed", "base"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"),
        ("google/gemma-2-9b-it", "google/gemma-2-9b"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-v0.3"),
        ("someone/SmolLM2-135M-chat", "HuggingFaceTB/SmolLM2-135M"),  # suffix rule
    ],
)
def test_instruct_variants_share_the_base_architecture(typed: str, base: str) -> None:
    variant, original = inspect(typed), inspect(base)
    assert variant.hf_id == typed
    assert variant.chat_template is True
    assert variant.total_params == original.total_params
    assert variant.linears == original.linears


def test_short_instruct_alias_maps_to_the_instruct_repo() -> None:
    spec = inspect("llama-3.1-8b-instruct")
    assert spec.hf_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert spec.chat_template


def test_preset_path_imports_no_training_stack() -> None:
    code = (
        "import sys; from axo_helper import model; "
        "s = model.inspect('meta-llama/Llama-3.1-8B'); model.list_presets(); "
        "bad = [m for m in ('torch', 'transformers', 'axolotl', 'huggingface_hub') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
