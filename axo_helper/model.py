"""Model inspection: architecture facts from a config.json, never weights.

`inspect(name)` resolves what the user passed to --model, in this order:

1. an existing local directory (a Hugging Face checkpoint folder with config.json);
2. a shipped preset (presets/models/*.yaml), matched by HF id, alias or a loose
   spelling ("Llama-3.1-8B", "llama3.1-8b"); "-Instruct"/"-it"/"-Chat" variants of a
   preset share its architecture;
3. the hub: only config.json, through huggingface_hub's cache (HF_HUB_OFFLINE honoured).

`from_config(config, ...)` is the pure part: it turns config.json fields into a
ModelSpec (linears per block with the module names PEFT/Axolotl use, parameter
counts, MoE active parameters). The module names follow the transformers version
Axolotl 0.19 runs on (5.x): MoE experts are fused 3D tensors there, not nn.Linear.

This module must stay importable without torch, transformers or axolotl: `plan`
runs on laptops, and a test asserts none of them is imported on that path.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from axo_helper.errors import EXIT_USAGE, ModelError
from axo_helper.resources import iter_preset_files, load_preset
from axo_helper.specs import LinearShape, ModelSpec

Source = Literal["local", "preset", "hub"]

# --------------------------------------------------------------------------- vocabulary

# model_type of encoders, encoder-decoders and vision/audio models: Axolotl fine-tunes
# decoder-only causal LMs, so these are refused with a clear message.
_NOT_CAUSAL_NAMES = """
    bert roberta xlm-roberta xlm_roberta distilbert albert electra deberta deberta-v2
    camembert mpnet modernbert nomic_bert xlnet t5 mt5 umt5 t5gemma bart mbart pegasus
    marian led longt5 switch_transformers whisper wav2vec2 hubert vit clip siglip dinov2
    convnext resnet swin beit deit sam
"""
_NOT_CAUSAL_TYPES = frozenset(_NOT_CAUSAL_NAMES.split())

# Architectures whose config.json may lack model_type (or files that only name the
# class, like benchmarks/data/vram-dev-models.json).
_ARCH_TO_TYPE = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "QWenLMHeadModel": "qwen",
    "GemmaForCausalLM": "gemma",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Phi3ForCausalLM": "phi3",
    "PhiForCausalLM": "phi",
    "GraniteForCausalLM": "granite",
    "GPTNeoXForCausalLM": "gpt_neox",
    "GPT2LMHeadModel": "gpt2",
}

# config.json field names differ between families; the first one present wins.
_FIELDS: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "max_position_embeddings": (
        "max_position_embeddings",
        "n_positions",
        "seq_length",
        "max_sequence_length",
        "n_ctx",
        "max_seq_len",
    ),
}


@dataclass(frozen=True)
class _Traits:
    """What varies between Llama-style decoders (q/k/v/o + gate/up/down)."""

    qkv_bias: bool | None = False  # None: read config attention_bias (llama, qwen3, granite)
    o_bias: bool | None = False  # None: same as attention_bias
    mlp_bias: bool | None = False  # None: read config mlp_bias (llama, granite)
    norms_per_layer: int = 2  # RMSNorm weight vectors of hidden size per block
    qk_norm: bool = False  # per-head RMSNorm on q and k (qwen3, gemma3)
    tie_default: bool = False  # the config class default for tie_word_embeddings


_LLAMA_STYLE: dict[str, _Traits] = {
    "llama": _Traits(qkv_bias=None, o_bias=None, mlp_bias=None),
    "granite": _Traits(qkv_bias=None, o_bias=None, mlp_bias=None),
    "mistral": _Traits(),
    "qwen2": _Traits(qkv_bias=True),
    "qwen3": _Traits(qkv_bias=None, o_bias=None, qk_norm=True),
    "gemma": _Traits(tie_default=True),
    "gemma2": _Traits(norms_per_layer=4, tie_default=True),
    "gemma3_text": _Traits(norms_per_layer=4, qk_norm=True, tie_default=True),
}
_MOE = {"mixtral", "qwen2_moe", "qwen3_moe"}
_OTHER = {"phi3", "phi", "qwen", "gpt_neox", "gpt2"}
KNOWN_MODEL_TYPES = frozenset(_LLAMA_STYLE) | _MOE | _OTHER

_TIE_DEFAULT = {
    "mixtral": False,
    "qwen2_moe": False,
    "qwen3_moe": False,
    "phi3": False,
    "phi": False,
    "qwen": False,
    "gpt_neox": False,
    "gpt2": True,
}


# --------------------------------------------------------------------------- config view
class _Config:
    """Read-only view of a config.json with the family-independent field names."""

    def __init__(self, raw: Mapping[str, Any], name: str):
        self.raw = raw
        self.name = name

    def get(self, key: str, default: Any = None) -> Any:
        for alias in _FIELDS.get(key, (key,)):
            value = self.raw.get(alias)
            if value is not None:
                return value
        return default

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.get(key, default)
        # bool is an int subclass; a true/false here is a broken config, not 1/0.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            if isinstance(value, float) and value.is_integer() and value > 0:
                return int(value)
            raise ModelError(
                f"config.json of {self.name}: {key} must be a positive integer, got {value!r}",
                hint="the file looks damaged; re-download it or pass another checkpoint",
            )
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        return default if value is None else bool(value)


# --------------------------------------------------------------------------- block layout
@dataclass
class _Block:
    """The linears of one transformer block plus the small parameters beside them."""

    linears: list[LinearShape] = field(default_factory=list)
    extra: int = 0  # norms and biases per block
    inactive: int = 0  # MoE: expert parameters a token does not use, per block

    def linear(
        self,
        name: str,
        d_in: int,
        d_out: int,
        *,
        bias: bool = False,
        count: int = 1,
        nn_linear: bool = True,
    ) -> None:
        self.linears.append(LinearShape(name, d_in, d_out, count, nn_linear=nn_linear))
        if bias:
            self.extra += d_out * count

    def norm(self, size: int, n: int = 1, *, bias: bool = False) -> None:
        self.extra += n * size * (2 if bias else 1)

    @property
    def params(self) -> int:
        return sum(ls.d_in * ls.d_out * ls.count for ls in self.linears) + self.extra


@dataclass
class _Layout:
    block: _Block
    intermediate_size: int  # width of one MLP matrix (per expert for MoE)
    mlp_gated: bool = True
    model_extra: int = 0  # final norm, learned positions, lm_head bias
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Dims:
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def q_out(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_out(self) -> int:
        return self.kv_heads * self.head_dim


def _attention_qkvo(block: _Block, d: _Dims, *, qkv_bias: bool, o_bias: bool) -> None:
    block.linear("q_proj", d.hidden, d.q_out, bias=qkv_bias)
    block.linear("k_proj", d.hidden, d.kv_out, bias=qkv_bias)
    block.linear("v_proj", d.hidden, d.kv_out, bias=qkv_bias)
    block.linear("o_proj", d.q_out, d.hidden, bias=o_bias)


def _swiglu(block: _Block, hidden: int, inter: int, *, bias: bool = False) -> None:
    block.linear("gate_proj", hidden, inter, bias=bias)
    block.linear("up_proj", hidden, inter, bias=bias)
    block.linear("down_proj", inter, hidden, bias=bias)


def _llama_style(cfg: _Config, model_type: str, d: _Dims) -> _Layout:
    t = _LLAMA_STYLE[model_type]
    attention_bias = cfg.flag("attention_bias", False)
    qkv_bias = attention_bias if t.qkv_bias is None else t.qkv_bias
    o_bias = attention_bias if t.o_bias is None else t.o_bias
    mlp_bias = cfg.flag("mlp_bias", False) if t.mlp_bias is None else t.mlp_bias
    inter = cfg.integer("intermediate_size")
    block = _Block()
    _attention_qkvo(block, d, qkv_bias=qkv_bias, o_bias=o_bias)
    _swiglu(block, d.hidden, inter, bias=mlp_bias)
    block.norm(d.hidden, t.norms_per_layer)
    if t.qk_norm:
        block.norm(d.head_dim, 2)
    return _Layout(block, inter, model_extra=d.hidden)


def _moe(cfg: _Config, model_type: str, d: _Dims) -> _Layout:
    """Mixtral / Qwen-MoE blocks as transformers 5 builds them (fused expert tensors)."""
    block = _Block()
    notes: list[str] = []
    if model_type == "mixtral":
        experts = cfg.integer("num_local_experts")
        width = cfg.integer("intermediate_size")
        _attention_qkvo(block, d, qkv_bias=False, o_bias=False)
        shared = 0
    else:
        experts = cfg.integer("num_experts")
        width = cfg.integer("moe_intermediate_size")
        qkv_bias = model_type == "qwen2_moe" or cfg.flag("attention_bias", False)
        o_bias = model_type != "qwen2_moe" and cfg.flag("attention_bias", False)
        _attention_qkvo(block, d, qkv_bias=qkv_bias, o_bias=o_bias)
        if model_type == "qwen3_moe":
            block.norm(d.head_dim, 2)
        shared = cfg.integer("shared_expert_intermediate_size") if model_type == "qwen2_moe" else 0
        if cfg.raw.get("mlp_only_layers") or cfg.raw.get("decoder_sparse_step", 1) != 1:
            notes.append(
                "some layers use a dense MLP (mlp_only_layers / decoder_sparse_step); "
                "every layer is counted as MoE, so parameters are approximate"
            )
    top_k = cfg.integer("num_experts_per_tok")
    # Router and experts are bare Parameters in transformers>=5: LoRA all-linear skips them.
    block.linear("gate", d.hidden, experts, nn_linear=False)
    block.linear("experts.gate_up_proj", d.hidden, 2 * width, count=experts, nn_linear=False)
    block.linear("experts.down_proj", width, d.hidden, count=experts, nn_linear=False)
    if shared:
        _swiglu(block, d.hidden, shared)  # mlp.shared_expert.{gate,up,down}_proj
        block.linear("shared_expert_gate", d.hidden, 1)
    block.norm(d.hidden, 2)
    block.inactive = max(0, experts - top_k) * 3 * d.hidden * width
    notes.append(
        f"MoE: {experts} experts, {top_k} active per token; expert weights are fused 3D "
        "tensors in transformers>=5, so LoRA all-linear adapts attention"
        + (" and the shared expert" if shared else "")
        + " only and QLoRA leaves experts in 16-bit unless quantize_moe_experts is set"
    )
    return _Layout(block, width, model_extra=d.hidden, notes=notes)


def _phi3(cfg: _Config, d: _Dims) -> _Layout:
    inter = cfg.integer("intermediate_size")
    block = _Block()
    block.linear("qkv_proj", d.hidden, d.q_out + 2 * d.kv_out)
    block.linear("o_proj", d.q_out, d.hidden)
    block.linear("gate_up_proj", d.hidden, 2 * inter)
    block.linear("down_proj", inter, d.hidden)
    block.norm(d.hidden, 2)
    return _Layout(block, inter, model_extra=d.hidden)


def _phi(cfg: _Config, d: _Dims, vocab: int) -> _Layout:
    """phi-1, phi-1_5, phi-2: parallel attention + GELU MLP, biases and LayerNorm."""
    inter = cfg.integer("intermediate_size", 4 * d.hidden)
    block = _Block()
    block.linear("q_proj", d.hidden, d.q_out, bias=True)
    block.linear("k_proj", d.hidden, d.kv_out, bias=True)
    block.linear("v_proj", d.hidden, d.kv_out, bias=True)
    block.linear("dense", d.q_out, d.hidden, bias=True)
    block.linear("fc1", d.hidden, inter, bias=True)
    block.linear("fc2", inter, d.hidden, bias=True)
    block.norm(d.hidden, 1, bias=True)  # one shared LayerNorm per block
    # final LayerNorm + the lm_head bias
    return _Layout(block, inter, mlp_gated=False, model_extra=2 * d.hidden + vocab)


def _qwen1(cfg: _Config, d: _Dims) -> _Layout:
    """Qwen-1 (remote code, model_type "qwen"): fused c_attn, w1/w2 gated MLP."""
    # config intermediate_size is twice the width of each of w1 and w2.
    width = cfg.integer("intermediate_size") // 2
    block = _Block()
    block.linear("c_attn", d.hidden, 3 * d.q_out, bias=True)
    block.linear("c_proj", d.q_out, d.hidden)
    block.linear("w1", d.hidden, width)
    block.linear("w2", d.hidden, width)
    block.linear("c_proj", width, d.hidden)  # mlp.c_proj: LoRA "c_proj" hits both
    block.norm(d.hidden, 2)
    notes = [
        "Qwen-1 needs trust_remote_code; its MLP width is intermediate_size/2 "
        f"({width}); target c_attn, c_proj, w1, w2 for LoRA"
    ]
    return _Layout(block, width, model_extra=d.hidden, notes=notes)


def _gpt_neox(cfg: _Config, d: _Dims) -> _Layout:
    inter = cfg.integer("intermediate_size", 4 * d.hidden)
    bias = cfg.flag("attention_bias", True)
    block = _Block()
    block.linear("query_key_value", d.hidden, 3 * d.q_out, bias=bias)
    block.linear("dense", d.q_out, d.hidden, bias=bias)
    block.linear("dense_h_to_4h", d.hidden, inter, bias=True)
    block.linear("dense_4h_to_h", inter, d.hidden, bias=True)
    block.norm(d.hidden, 2, bias=True)
    return _Layout(block, inter, mlp_gated=False, model_extra=2 * d.hidden)


def _gpt2(cfg: _Config, d: _Dims, positions: int) -> _Layout:
    inter = cfg.integer("n_inner", 4 * d.hidden)
    block = _Block()
    block.linear("c_attn", d.hidden, 3 * d.hidden, bias=True)
    block.linear("c_proj", d.hidden, d.hidden, bias=True)
    block.linear("c_fc", d.hidden, inter, bias=True)
    block.linear("c_proj", inter, d.hidden, bias=True)
    block.norm(d.hidden, 2, bias=True)
    # learned position embeddings + final LayerNorm
    return _Layout(block, inter, mlp_gated=False, model_extra=positions * d.hidden + 2 * d.hidden)


def _generic(cfg: _Config, model_type: str, arch: str, d: _Dims) -> _Layout:
    """Unknown architecture: a Llama-like guess from the generic fields, said so."""
    block = _Block()
    _attention_qkvo(block, d, qkv_bias=False, o_bias=False)
    if cfg.get("intermediate_size") is not None:
        inter = cfg.integer("intermediate_size")
        _swiglu(block, d.hidden, inter)
        gated = True
    else:  # OPT says ffn_dim, GPT-2-likes n_inner; else the classic 4 x hidden
        key = "ffn_dim" if cfg.get("ffn_dim") is not None else "n_inner"
        inter = cfg.integer(key, 4 * d.hidden)
        block.linear("fc1", d.hidden, inter)
        block.linear("fc2", inter, d.hidden)
        gated = False
    block.norm(d.hidden, 2)
    what = f"{arch or 'no architectures'} (model_type {model_type or 'missing'})"
    notes = [
        f"unknown architecture {what}: sizes come from the generic config.json fields "
        f"({'intermediate_size' if gated else f'MLP width {inter}'}); module names and the "
        "parameter count are a Llama-style estimate"
    ]
    return _Layout(block, inter, mlp_gated=gated, model_extra=d.hidden, notes=notes)


# --------------------------------------------------------------------------- from_config
def _normalise_family(model_type: str) -> str:
    family = model_type.lower().replace("-", "_")
    return family.removesuffix("_text")  # gemma3_text -> gemma3


def _is_causal_arch(arch: str) -> bool:
    return arch.endswith(("ForCausalLM", "LMHeadModel"))


def _architectures(config: Mapping[str, Any]) -> list[str]:
    archs = config.get("architectures")
    if isinstance(archs, str):
        return [archs]
    if isinstance(archs, Sequence) and archs:
        return [str(a) for a in archs]
    single = config.get("architecture")  # vram-dev-models.json style
    return [str(single)] if single else []


def _model_type(config: Mapping[str, Any], archs: list[str]) -> str:
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type
    for arch in archs:
        if arch in _ARCH_TO_TYPE:
            return _ARCH_TO_TYPE[arch]
    return ""


def from_config(
    config: Mapping[str, Any],
    *,
    name: str,
    source: Source = "local",
    local_path: str | None = None,
    hf_id: str | None = None,
    chat_template: bool = False,
) -> ModelSpec:
    """Architecture facts of a causal LM from its config.json fields (pure, no I/O).

    Also accepts the entries of benchmarks/data/vram-dev-models.json, which name the
    class in "architecture" (singular) and omit model_type.
    """
    if not isinstance(config, Mapping):
        raise ModelError(f"config.json of {name} is not a JSON object")
    archs = _architectures(config)
    model_type = _model_type(config, archs)
    notes: list[str] = []

    # Multimodal checkpoints (Llava, Gemma 3 4B+, Mistral 3): the language model is
    # what LoRA trains and what memory scales with; its fields live in text_config.
    text_config = config.get("text_config")
    if (
        isinstance(text_config, Mapping)
        and any(a.endswith("ForConditionalGeneration") for a in archs)
        and model_type.lower() not in _NOT_CAUSAL_TYPES
    ):
        text_type = text_config.get("model_type") or model_type
        config = {**text_config, "model_type": text_type}
        notes.append(
            f"multimodal model ({', '.join(archs)}): facts are its language model's; "
            "the vision encoder is not counted"
        )
        model_type = str(text_type)
        archs_ok = True
    else:
        archs_ok = not archs or any(_is_causal_arch(a) for a in archs)

    if model_type.lower() in _NOT_CAUSAL_TYPES or not archs_ok:
        listed = ", ".join(archs) if archs else f"model_type {model_type}"
        raise ModelError(
            f"{name} is not a causal language model (architectures: {listed})",
            hint="Axolotl fine-tunes decoder-only models whose config.json lists a "
            "*ForCausalLM architecture (Llama, Qwen, Mistral, Gemma, Phi, ...)",
        )

    cfg = _Config(config, name)
    missing = [
        key
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
        if cfg.get(key) is None
    ]
    if model_type == "mixtral":
        missing += [k for k in ("num_local_experts", "num_experts_per_tok") if cfg.get(k) is None]
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        moe_keys = ["num_experts", "num_experts_per_tok", "moe_intermediate_size"]
        if model_type == "qwen2_moe":
            moe_keys.append("shared_expert_intermediate_size")
        missing += [k for k in moe_keys if cfg.get(k) is None]
    if (model_type in _LLAMA_STYLE or model_type in {"mixtral", "phi3", "qwen"}) and cfg.get(
        "intermediate_size"
    ) is None:
        missing.append("intermediate_size")
    if missing:
        raise ModelError(
            f"config.json of {name} lacks {', '.join(missing)}",
            hint="a config.json saved by transformers has these fields; pass the "
            "checkpoint's own config.json",
        )

    hidden = cfg.integer("hidden_size")
    layers = cfg.integer("num_hidden_layers")
    heads = cfg.integer("num_attention_heads")
    vocab = cfg.integer("vocab_size")
    kv_heads = cfg.integer("num_key_value_heads", heads)
    head_dim = 0  # set explicitly when heads * head_dim != hidden (Gemma, Qwen3)
    for key in ("head_dim", "kv_channels"):  # kv_channels: Qwen-1
        if config.get(key) is not None:
            head_dim = cfg.integer(key)
            break
    if not head_dim:
        if hidden % heads:
            raise ModelError(
                f"config.json of {name}: hidden_size {hidden} is not divisible by "
                f"num_attention_heads {heads} and head_dim is not set"
            )
        head_dim = hidden // heads
    if model_type == "qwen":  # Qwen-1 is multi-head attention; no kv field
        kv_heads = heads
    if heads % kv_heads:
        raise ModelError(
            f"config.json of {name}: num_attention_heads {heads} is not a multiple of "
            f"num_key_value_heads {kv_heads}"
        )
    positions = cfg.get("max_position_embeddings")
    if positions is None:
        positions = 2048
        notes.append("config.json names no maximum sequence length; assumed 2048")
    else:
        positions = cfg.integer("max_position_embeddings")

    dims = _Dims(hidden, heads, kv_heads, head_dim)
    generic = False
    if model_type in _LLAMA_STYLE:
        layout = _llama_style(cfg, model_type, dims)
    elif model_type in _MOE:
        layout = _moe(cfg, model_type, dims)
    elif model_type == "phi3":
        layout = _phi3(cfg, dims)
    elif model_type == "phi":
        layout = _phi(cfg, dims, vocab)
    elif model_type == "qwen":
        layout = _qwen1(cfg, dims)
    elif model_type == "gpt_neox":
        layout = _gpt_neox(cfg, dims)
    elif model_type == "gpt2":
        layout = _gpt2(cfg, dims, positions)
    else:
        layout = _generic(cfg, model_type, archs[0] if archs else "", dims)
        generic = True
    notes.extend(layout.notes)

    tie_default = (
        _LLAMA_STYLE[model_type].tie_default
        if model_type in _LLAMA_STYLE
        else (
            _TIE_DEFAULT.get(model_type, True)  # PretrainedConfig's own default is True
        )
    )
    tied = cfg.flag("tie_word_embeddings", tie_default)
    embeddings = vocab * hidden * (1 if tied else 2)
    block_params = layout.block.params
    total = embeddings + layers * block_params + layout.model_extra
    active = total - layers * layout.block.inactive

    experts = 0
    top_k = 0
    if model_type == "mixtral":
        experts, top_k = cfg.integer("num_local_experts"), cfg.integer("num_experts_per_tok")
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        experts, top_k = cfg.integer("num_experts"), cfg.integer("num_experts_per_tok")
    shared = cfg.integer("shared_expert_intermediate_size") if model_type == "qwen2_moe" else 0

    dtype = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    architecture = archs[0] if archs else ""
    return ModelSpec(
        name=name,
        model_type=model_type or "unknown",
        architecture=architecture,
        family=_normalise_family(model_type) if model_type else "unknown",
        hidden_size=hidden,
        intermediate_size=layout.intermediate_size,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=tied,
        max_position_embeddings=positions,
        total_params=total,
        active_params=active,
        linears=tuple(layout.block.linears),
        num_experts=experts,
        experts_per_token=top_k,
        shared_expert_intermediate_size=shared,
        mlp_gated=layout.mlp_gated,
        torch_dtype=str(dtype),
        source=source,
        local_path=local_path,
        hf_id=hf_id,
        generic=generic,
        chat_template=chat_template,
        notes=tuple(notes),
    )


def from_dev_facts(entry: Mapping[str, Any], name: str) -> ModelSpec:
    """A ModelSpec from one entry of benchmarks/data/vram-dev-models.json."""
    hf_id = entry.get("hf_id")
    return from_config(entry, name=name, source="preset", hf_id=str(hf_id) if hf_id else None)


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """One presets/models/*.yaml file."""

    key: str  # the file stem, e.g. "llama-3.1-8b"
    hf_id: str
    aliases: tuple[str, ...]
    instruct: tuple[str, ...]  # HF ids of chat/instruct variants with the same architecture
    chat_template: bool
    config: Mapping[str, Any]
    params_b: float | None = None  # published size, billions (total for MoE)
    active_params_b: float | None = None  # MoE: published active size


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_VARIANT_SUFFIX = re.compile(r"[-_ ](instruct|chat|it)$", re.IGNORECASE)


def _loose(name: str) -> str:
    """A spelling-insensitive key: no org, no "meta-" prefix, no separators, lower case."""
    base = name.strip().rstrip("/").split("/")[-1].lower()
    base = base.removeprefix("meta-")
    return re.sub(r"[-_ ]", "", base)


@functools.cache
def _presets() -> tuple[Preset, ...]:
    found: list[Preset] = []
    for rel in iter_preset_files("models"):
        raw = load_preset(rel)
        key = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if not isinstance(raw, dict) or "hf_id" not in raw or "config" not in raw:
            raise ModelError(
                f"preset {rel} is malformed (needs hf_id and config)",
                hint="reinstall axo-helper",
            )
        found.append(
            Preset(
                key=key,
                hf_id=str(raw["hf_id"]),
                aliases=tuple(str(a) for a in raw.get("aliases") or ()),
                instruct=tuple(str(a) for a in raw.get("instruct") or ()),
                chat_template=bool(raw.get("chat_template", False)),
                config=raw["config"],
                params_b=raw.get("params_b"),
                active_params_b=raw.get("active_params_b"),
            )
        )
    return tuple(found)


@functools.cache
def _index() -> tuple[dict[str, tuple[Preset, bool]], dict[str, tuple[Preset, bool]]]:
    """(exact lower-case names, loose keys) -> (preset, is an instruct variant)."""
    exact: dict[str, tuple[Preset, bool]] = {}
    loose: dict[str, tuple[Preset, bool]] = {}
    for p in _presets():
        for names, variant in (((p.hf_id, p.key, *p.aliases), False), (p.instruct, True)):
            for n in names:
                exact.setdefault(n.lower(), (p, variant))
                loose.setdefault(_loose(n), (p, variant))
    return exact, loose


def find_preset(name: str) -> tuple[Preset, bool] | None:
    """The preset `name` refers to and whether it names an instruct/chat variant."""
    exact, loose = _index()
    lowered = name.strip().lower()
    if lowered in exact:
        return exact[lowered]
    if _loose(name) in loose:
        return loose[_loose(name)]
    # "-Instruct" / "-it" / "-Chat" of a preset: same architecture, a chat tokenizer.
    stripped = _VARIANT_SUFFIX.sub("", name.strip())
    if stripped != name.strip():
        hit = exact.get(stripped.lower()) or loose.get(_loose(stripped))
        if hit:
            return hit[0], True
    return None


def _closest_presets(name: str, n: int = 5) -> list[str]:
    _, loose = _index()
    keys = difflib.get_close_matches(_loose(name), list(loose), n=3 * n, cutoff=0.4)
    out: list[str] = []
    for k in keys:
        hf_id = loose[k][0].hf_id
        if hf_id not in out:
            out.append(hf_id)
    if not out:
        out = [
            p.hf_id
            for p in _presets()
            if p.key in ("llama-3.1-8b", "qwen2.5-7b", "mistral-7b-v0.3")
        ]
    return out[:n]


def _preset_spec(name: str, preset: Preset, variant: bool) -> ModelSpec:
    typed = name.strip()
    if "/" in typed:
        hf_id = typed  # keep the user's repo id (an instruct variant, an old name)
    elif variant:
        hf_id = preset.instruct[0] if preset.instruct else f"{preset.hf_id}-Instruct"
    else:
        hf_id = preset.hf_id
    return from_config(
        preset.config,
        name=typed,
        source="preset",
        hf_id=hf_id,
        chat_template=True if variant else preset.chat_template,
    )


def list_presets() -> list[ModelSpec]:
    """Every shipped model preset, by file name."""
    return [_preset_spec(p.hf_id, p, False) for p in _presets()]


# --------------------------------------------------------------------------- local / hub
def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tok = folder / "tokenizer_config.json"
    if not tok.is_file():
        return False
    try:
        data = json.loads(tok.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # a broken tokenizer file is the dataset scanner's concern
    return isinstance(data, dict) and bool(data.get("chat_template"))


def _read_config(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{what} is not valid JSON (line {exc.lineno}: {exc.msg})",
            hint="re-download the checkpoint's config.json",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{what} is not a JSON object")
    return data


def _inspect_local(folder: Path, name: str) -> ModelSpec:
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = (
            "pass the folder of a Hugging Face checkpoint (config.json sits next to the "
            "weights), or an HF id such as meta-llama/Llama-3.1-8B"
        )
        if (folder / "adapter_config.json").is_file():
            hint = (
                "this looks like a LoRA adapter; pass its base model "
                "(base_model_name_or_path in adapter_config.json)"
            )
        raise ModelError(
            f"model directory {name} has no config.json", hint=hint, exit_code=EXIT_USAGE
        )
    config = _read_config(config_path, f"{config_path}")
    # _name_or_path is the repo a checkpoint came from, or a stale local path: keep repo ids.
    origin = config.get("_name_or_path")
    hf_id = origin if isinstance(origin, str) and _REPO_ID.match(origin) else None
    return from_config(
        config,
        name=name,
        source="local",
        local_path=str(folder.resolve()),
        hf_id=hf_id,
        chat_template=_has_chat_template(folder),
    )


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", ".\\"))
        or name in (".", "..")
        or (os.sep != "/" and os.sep in name)
    )


def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def _hub_cache_dir() -> str | None:
    # huggingface_hub reads these once at import; read them per call so a changed
    # environment (tests, long-lived processes) is honoured.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def _unknown(name: str, why: str) -> ModelError:
    return ModelError(
        f"unknown model '{name}': not a local directory, not a shipped preset, and {why}",
        hint="pass a local directory containing config.json (e.g. --model ./my-model) "
        f"or one of: {', '.join(_closest_presets(name))}",
    )


def _from_hub(name: str, offline: bool) -> ModelSpec:
    # Imported here: huggingface_hub costs start-up time the preset path does not need.
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache_dir = _hub_cache_dir()
    try:
        path = hf_hub_download(
            repo_id=name, filename="config.json", cache_dir=cache_dir, local_files_only=offline
        )
    except HFValidationError:
        raise _unknown(name, "it is not a valid Hugging Face repo id") from None
    except GatedRepoError:
        raise ModelError(
            f"model '{name}' is gated on the Hugging Face hub",
            hint=f"accept its licence at https://huggingface.co/{name} and set HF_TOKEN "
            "(or run `hf auth login`), or pass a local directory containing config.json",
        ) from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        why = "the hub is offline (HF_HUB_OFFLINE)" if offline else "the hub is unreachable"
        raise _unknown(name, f"{why} and its config.json is not cached") from None
    except RepositoryNotFoundError:
        err = _unknown(name, "the hub has no such repository")
        err.hint = (err.hint or "") + "; for a private repository set HF_TOKEN"
        raise err from None
    except RevisionNotFoundError:
        raise _unknown(name, "the hub has no main revision for it") from None
    except EntryNotFoundError:
        raise ModelError(
            f"hub repository '{name}' has no config.json",
            hint="it may hold GGUF or adapter files only; pass the base Hugging Face "
            "checkpoint it was made from",
        ) from None
    except Exception as exc:  # network stack errors vary (httpx, OSError, timeouts)
        raise _unknown(name, f"the hub is unreachable ({type(exc).__name__})") from None

    config = _read_config(Path(path), f"config.json of {name}")
    # The tokenizer is not downloaded; if an earlier run cached it, use what it says.
    chat = False
    for filename in ("chat_template.jinja", "tokenizer_config.json"):
        cached = try_to_load_from_cache(name, filename, cache_dir=cache_dir)
        if isinstance(cached, str):
            chat = chat or _has_chat_template(Path(cached).parent)
    return from_config(config, name=name, source="hub", hf_id=name, chat_template=chat)


def inspect(name: str, *, offline: bool | None = None) -> ModelSpec:
    """Resolve --model: a local directory, a shipped preset, or the hub's config.json.

    `offline=None` follows HF_HUB_OFFLINE. Never loads weights.
    """
    name = name.strip()
    if not name:
        raise ModelError(
            "--model is empty", hint="pass an HF id or a local directory", exit_code=EXIT_USAGE
        )
    path = Path(name).expanduser()
    if path.is_dir():
        return _inspect_local(path, name)
    if path.is_file() and path.name == "config.json":
        return _inspect_local(path.parent, str(path.parent))
    if path.exists():
        raise ModelError(
            f"{name} is a file, not a model directory",
            hint="pass the folder that holds config.json",
            exit_code=EXIT_USAGE,
        )
    if _looks_like_path(name):
        raise ModelError(
            f"model directory {name} does not exist",
            hint="check the path, or pass an HF id such as meta-llama/Llama-3.1-8B",
            exit_code=EXIT_USAGE,
        )
    hit = find_preset(name)
    if hit is not None:
        return _preset_spec(name, *hit)
    return _from_hub(name, _offline(offline))
