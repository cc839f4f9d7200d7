"""Reading a config.json: field names across families, the architecture and model_type,
the causal-LM check (multimodal checkpoints are read through their text_config), and
the attention shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from axo_helper.errors import ModelError

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


# Larger than any dimension, vocabulary or context of a real checkpoint (int32 max,
# what torch's embedding and position indices hold); past it the arithmetic of the
# estimate overflows floats instead of saying what is wrong.
MAX_DIM = 2**31 - 1


class Config:
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
        given = self.get(key, default)
        value = int(given) if isinstance(given, float) and given.is_integer() else given
        # bool is an int subclass; a true/false here is a broken config, not 1/0.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
            shown = repr(given) if len(repr(given)) <= 40 else f"{repr(given)[:37]}..."
            raise ModelError(
                f"config.json of {self.name}: {key} must be a positive integer up to "
                f"{MAX_DIM:,}, got {shown}",
                hint="the file looks damaged; re-download it or pass another checkpoint",
            )
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
        return default if value is None else bool(value)


@dataclass(frozen=True)
class Dims:
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


def normalise_family(model_type: str) -> str:
    """The family name ModelSpec carries: lower case, underscores, no "_text"."""
    family = model_type.lower().replace("-", "_")
    return family.removesuffix("_text")  # gemma3_text -> gemma3


def _is_causal_arch(arch: str) -> bool:
    return arch.endswith(("ForCausalLM", "LMHeadModel"))


def architectures(config: Mapping[str, Any]) -> list[str]:
    """The architecture class names a config lists (plural or singular field)."""
    archs = config.get("architectures")
    if isinstance(archs, str):
        return [archs]
    if isinstance(archs, Sequence) and archs:
        return [str(a) for a in archs]
    single = config.get("architecture")  # vram-dev-models.json style
    return [str(single)] if single else []


def model_type_of(config: Mapping[str, Any], archs: list[str]) -> str:
    """config.json's model_type, else the one its architecture implies, else ""."""
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type
    for arch in archs:
        if arch in _ARCH_TO_TYPE:
            return _ARCH_TO_TYPE[arch]
    return ""


def causal_lm_config(
    config: Mapping[str, Any], name: str, notes: list[str]
) -> tuple[Mapping[str, Any], list[str], str]:
    """(the language model's config, architectures, model_type) of a causal LM; any
    other model is refused with a ModelError."""
    archs = architectures(config)
    model_type = model_type_of(config, archs)
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
    return config, archs, model_type


def attention_dims(cfg: Config, model_type: str, hidden: int, heads: int) -> Dims:
    """Query/key-value heads and head width, checked against each other."""
    kv_heads = cfg.integer("num_key_value_heads", heads)
    head_dim = 0  # set explicitly when heads * head_dim != hidden (Gemma, Qwen3)
    for key in ("head_dim", "kv_channels"):  # kv_channels: Qwen-1
        if cfg.raw.get(key) is not None:
            head_dim = cfg.integer(key)
            break
    if not head_dim:
        if hidden % heads:
            raise ModelError(
                f"config.json of {cfg.name}: hidden_size {hidden} is not divisible by "
                f"num_attention_heads {heads} and head_dim is not set",
                hint="set head_dim in config.json (the checkpoint's own value), or check "
                "hidden_size and num_attention_heads against the model card",
            )
        head_dim = hidden // heads
    if model_type == "qwen":  # Qwen-1 is multi-head attention; no kv field
        kv_heads = heads
    if heads % kv_heads:
        raise ModelError(
            f"config.json of {cfg.name}: num_attention_heads {heads} is not a multiple of "
            f"num_key_value_heads {kv_heads}",
            hint="grouped-query attention shares each key/value head among a whole number "
            "of query heads; check both values against the model card",
        )
    return Dims(hidden, heads, kv_heads, head_dim)


def max_positions(cfg: Config, notes: list[str]) -> int:
    """The maximum sequence length; 2048 (and a note) when the config names none."""
    if cfg.get("max_position_embeddings") is None:
        notes.append("config.json names no maximum sequence length; assumed 2048")
        return 2048
    return cfg.integer("max_position_embeddings")
