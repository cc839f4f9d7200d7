"""model: presets, from_config arithmetic, local directories, the hub cache, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from axo_helper import model
from axo_helper.errors import EXIT_FAILURE, EXIT_USAGE, ModelError
from axo_helper.resources import iter_preset_files, load_preset
from axo_helper.specs import ModelSpec

DEV_MODELS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "vram-dev-models.json"

LLAMA_31_8B: dict[str, Any] = dict(load_preset("models/llama-3.1-8b.yaml")["config"])


def _preset_files() -> list[str]:
    return iter_preset_files("models")


def _write(folder: Path, name: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _lora_params(spec: ModelSpec, r: int) -> int:
    """r * sum(d_in + d_out) over the nn.Linear modules LoRA all-linear adapts."""
    per_layer = sum((ls.d_in + ls.d_out) * ls.count for ls in spec.linears if ls.nn_linear)
    return r * per_layer * spec.num_layers


# --------------------------------------------------------------------------- presets
def test_presets_ship_with_the_package() -> None:
    files = _preset_files()
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
    spec = model.inspect(hf_id)
    assert spec.source == "preset"
    assert spec.hf_id == hf_id
    assert not spec.generic


def test_every_preset_yields_sane_facts() -> None:
    specs = model.list_presets()
    assert len(specs) == len(_preset_files())
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


@pytest.mark.parametrize("rel", _preset_files())
def test_parameter_count_matches_published_size(rel: str) -> None:
    raw = load_preset(rel)
    spec = model.from_config(raw["config"], name=raw["hf_id"], source="preset")
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
    spec = model.inspect(name)
    assert spec.total_params / 1e9 == pytest.approx(total_b, rel=0.02)
    assert spec.active_params / 1e9 == pytest.approx(active_b, rel=0.02)


def test_exact_counts_of_two_well_known_checkpoints() -> None:
    # Llama-3.1-8B and Qwen2.5-0.5B (tied) as PyTorch reports them.
    assert model.inspect("meta-llama/Llama-3.1-8B").total_params == 8_030_261_248
    assert model.inspect("Qwen/Qwen2.5-0.5B").total_params == 494_032_768


def test_lora_all_linear_r16_llama_31_8b() -> None:
    spec = model.inspect("meta-llama/Llama-3.1-8B")
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
    s = model.inspect("meta-llama/Llama-3.1-8B")
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


def test_preset_names_are_unambiguous() -> None:
    seen: dict[str, str] = {}
    for p in model._presets():
        for n in (p.hf_id, p.key, *p.aliases, *p.instruct):
            key = model._loose(n)
            assert seen.setdefault(key, p.key) == p.key, f"{n} matches {seen[key]} and {p.key}"


@pytest.mark.parametrize(
    "spelling",
    ["Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-8B", "llama3.1-8b", "LLAMA-3.1-8B", "llama_3.1_8b"],
)
def test_loose_spellings_find_the_preset(spelling: str) -> None:
    spec = model.inspect(spelling)
    assert spec.source == "preset"
    assert spec.total_params == 8_030_261_248
    assert spec.name == spelling


def test_short_alias_keeps_the_canonical_hf_id() -> None:
    assert model.inspect("llama3.1-8b").hf_id == "meta-llama/Llama-3.1-8B"
    assert model.inspect("meta-llama/Meta-Llama-3.1-8B").hf_id == "meta-llama/Meta-Llama-3.1-8B"


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
    variant, original = model.inspect(typed), model.inspect(base)
    assert variant.hf_id == typed
    assert variant.chat_template is True
    assert variant.total_params == original.total_params
    assert variant.linears == original.linears


def test_short_instruct_alias_maps_to_the_instruct_repo() -> None:
    spec = model.inspect("llama-3.1-8b-instruct")
    assert spec.hf_id == "meta-llama/Llama-3.1-8B-Instruct"
    assert spec.chat_template


# --------------------------------------------------------------------------- families
def test_qwen2_counts_qkv_biases() -> None:
    cfg = dict(load_preset("models/qwen2.5-0.5b.yaml")["config"])
    with_bias = model.from_config(cfg, name="q").total_params
    as_mistral = model.from_config(
        {**cfg, "model_type": "mistral", "architectures": ["MistralForCausalLM"]}, name="m"
    ).total_params
    # q: 896, k: 128, v: 128 bias elements per layer, 24 layers
    assert with_bias - as_mistral == 24 * (896 + 128 + 128)


def test_phi3_uses_fused_module_names() -> None:
    s = model.inspect("microsoft/phi-4")
    shapes = {ls.name: (ls.d_in, ls.d_out) for ls in s.linears}
    assert shapes == {
        "qkv_proj": (5120, 5120 + 2 * 10 * 128),
        "o_proj": (5120, 5120),
        "gate_up_proj": (5120, 2 * 17920),
        "down_proj": (17920, 5120),
    }


def test_mixtral_experts_are_fused_tensors_outside_all_linear() -> None:
    s = model.inspect("mistralai/Mixtral-8x7B-v0.1")
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
    s = model.inspect("Qwen/Qwen1.5-MoE-A2.7B")
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
    s = model.inspect("google/gemma-2-9b")
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
        spec = model.from_dev_facts(entry, key)
        assert spec.total_params / 1e9 == pytest.approx(entry["params_b"], rel=0.005), key
        assert spec.hf_id == entry["hf_id"]


def test_qwen1_and_phi15_layouts() -> None:
    qwen = model.from_config(
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
    phi = model.from_config(
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


# --------------------------------------------------------------------------- bad configs
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
        model.from_config(config, name="some/model")
    assert "some/model is not a causal language model (architectures:" in err.value.message
    assert shown in err.value.message
    assert err.value.hint and "ForCausalLM" in err.value.hint


def test_missing_fields_are_named() -> None:
    config = {k: v for k, v in LLAMA_31_8B.items() if k not in ("hidden_size", "vocab_size")}
    with pytest.raises(ModelError) as err:
        model.from_config(config, name="x")
    assert "hidden_size" in err.value.message and "vocab_size" in err.value.message
    assert "num_hidden_layers" not in err.value.message


def test_non_integer_field_is_refused() -> None:
    with pytest.raises(ModelError, match="num_hidden_layers must be a positive integer"):
        model.from_config({**LLAMA_31_8B, "num_hidden_layers": "32"}, name="x")


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
    s = model.from_config(config, name="acme/frob")
    assert s.generic
    assert any("unknown architecture FrobnicatorForCausalLM" in n for n in s.notes)
    assert (s.hidden_size, s.num_layers, s.num_attention_heads) == (1024, 12, 16)
    assert s.intermediate_size == 4 * 1024 and not s.mlp_gated
    assert s.max_position_embeddings == 4096
    gated = model.from_config({**config, "intermediate_size": 2816}, name="acme/frob")
    assert gated.generic and gated.mlp_gated and gated.intermediate_size == 2816


def test_known_family_is_not_generic() -> None:
    assert not model.from_config(LLAMA_31_8B, name="x").generic


def test_multimodal_reads_the_language_model() -> None:
    config = {
        "model_type": "llava",
        "architectures": ["LlavaForConditionalGeneration"],
        "text_config": LLAMA_31_8B,
        "vision_config": {"model_type": "clip_vision_model", "hidden_size": 1024},
    }
    s = model.from_config(config, name="llava")
    assert s.family == "llama" and s.total_params == 8_030_261_248
    assert any("vision encoder is not counted" in n for n in s.notes)


# --------------------------------------------------------------------------- local dirs
def test_local_directory(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    _write(folder, "config.json", {**LLAMA_31_8B, "_name_or_path": "meta-llama/Llama-3.1-8B"})
    _write(folder, "tokenizer_config.json", {"chat_template": "{{ messages }}"})
    s = model.inspect(str(folder))
    assert s.source == "local"
    assert s.local_path == str(folder.resolve())
    assert s.hf_id == "meta-llama/Llama-3.1-8B"
    assert s.chat_template is True
    assert s.total_params == 8_030_261_248


def test_local_directory_chat_template_jinja_and_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    _write(plain, "config.json", {**LLAMA_31_8B, "_name_or_path": "/home/me/ckpt"})
    _write(plain, "tokenizer_config.json", {"bos_token": "<s>"})
    s = model.inspect(str(plain))
    assert s.chat_template is False and s.hf_id is None
    _write(plain, "chat_template.jinja", "{{ messages }}")
    assert model.inspect(str(plain)).chat_template is True


def test_local_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        model.inspect(str(tmp_path))
    assert err.value.message == f"model directory {tmp_path} has no config.json"
    assert err.value.exit_code == EXIT_USAGE
    assert err.value.hint and "config.json" in err.value.hint


def test_adapter_directory_hint(tmp_path: Path) -> None:
    _write(tmp_path, "adapter_config.json", {"base_model_name_or_path": "x/y"})
    with pytest.raises(ModelError) as err:
        model.inspect(str(tmp_path))
    assert err.value.hint and "LoRA adapter" in err.value.hint


def test_local_not_causal(tmp_path: Path) -> None:
    _write(tmp_path, "config.json", {"model_type": "bert", "architectures": ["BertModel"]})
    with pytest.raises(ModelError) as err:
        model.inspect(str(tmp_path))
    assert "is not a causal language model (architectures: BertModel)" in err.value.message
    assert err.value.exit_code == EXIT_FAILURE


def test_local_broken_json(tmp_path: Path) -> None:
    _write(tmp_path, "config.json", "{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        model.inspect(str(tmp_path))


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        model.inspect(str(tmp_path / "nope"))
    assert "does not exist" in err.value.message and err.value.exit_code == EXIT_USAGE


# --------------------------------------------------------------------------- hub
def _fake_hub_cache(root: Path, repo: str, config: dict[str, Any]) -> None:
    """The layout huggingface_hub writes: models--org--name/{refs/main,snapshots/<sha>/}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    _write(repo_dir / "refs", "main", sha)
    _write(repo_dir / "snapshots" / sha, "config.json", config)


def test_hub_config_resolves_from_the_cache_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import hf_hub_download

    cache = tmp_path / "hub"
    repo = "acme/Tiny-Llama-Test"
    _fake_hub_cache(cache, repo, {**LLAMA_31_8B, "num_hidden_layers": 2})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the real huggingface_hub resolves it from the cache without a network
    found = hf_hub_download(repo, "config.json", cache_dir=str(cache), local_files_only=True)
    assert Path(found).parent.parent.parent.name == "models--acme--Tiny-Llama-Test"

    s = model.inspect(repo)
    assert s.source == "hub" and s.hf_id == repo and s.name == repo
    assert s.num_layers == 2
    assert s.chat_template is False  # no tokenizer in the cache


def test_hub_cache_tokenizer_gives_chat_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    repo = "acme/chatty"
    _fake_hub_cache(cache, repo, LLAMA_31_8B)
    snapshot = next((cache / "models--acme--chatty" / "snapshots").iterdir())
    _write(snapshot, "tokenizer_config.json", {"chat_template": "{{ messages }}"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert model.inspect(repo).chat_template is True


def test_offline_unknown_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as err:
        model.inspect("acme/llama-3.1-8b-finetune-xyz")
    msg = err.value.message
    assert msg.startswith("unknown model 'acme/llama-3.1-8b-finetune-xyz': not a local directory")
    assert "offline" in msg
    hint = err.value.hint or ""
    assert "--model ./my-model" in hint
    assert "meta-llama/Llama-3.1-8B" in hint  # the closest preset


def test_offline_flag_overrides_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="offline"):
        model.inspect("acme/nothing-here", offline=True)


def test_gated_repo_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def gated(*args: Any, **kwargs: Any) -> str:
        request = httpx.Request("GET", "https://huggingface.co/acme/gated")
        raise GatedRepoError("401", response=httpx.Response(401, request=request))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", gated)
    with pytest.raises(ModelError) as err:
        model.inspect("acme/gated", offline=False)
    assert "gated" in err.value.message
    assert err.value.hint and "HF_TOKEN" in err.value.hint


def test_network_failure_reads_as_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def down(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", down)
    with pytest.raises(ModelError, match=r"unknown model 'acme/x'.*unreachable"):
        model.inspect("acme/x", offline=False)


def test_invalid_repo_id_is_unknown() -> None:
    with pytest.raises(ModelError, match="unknown model 'not a model!!'"):
        model.inspect("not a model!!")


def test_preset_path_imports_no_training_stack() -> None:
    code = (
        "import sys; from axo_helper import model; "
        "s = model.inspect('meta-llama/Llama-3.1-8B'); model.list_presets(); "
        "bad = [m for m in ('torch', 'transformers', 'axolotl', 'huggingface_hub') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
