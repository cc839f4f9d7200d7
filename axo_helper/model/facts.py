"""`from_config`: a config.json (or a vram-dev-models.json entry) -> ModelSpec. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from axo_helper.errors import ModelError
from axo_helper.model.config import (
    Config,
    attention_dims,
    causal_lm_config,
    max_positions,
    normalise_family,
)
from axo_helper.model.layouts import layout_for, missing_fields, moe_counts, tie_default
from axo_helper.specs import ModelSpec

# Where a ModelSpec's facts came from (ModelSpec.source).
Source = Literal["local", "preset", "hub"]


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
    notes: list[str] = []
    config, archs, model_type = causal_lm_config(config, name, notes)
    cfg = Config(config, name)
    missing = missing_fields(cfg, model_type)
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
    dims = attention_dims(cfg, model_type, hidden, heads)
    positions = max_positions(cfg, notes)
    layout, generic = layout_for(cfg, model_type, archs, dims, vocab, positions)
    notes.extend(layout.notes)

    tied = cfg.flag("tie_word_embeddings", tie_default(model_type))
    embeddings = vocab * hidden * (1 if tied else 2)
    total = embeddings + layers * layout.block.params + layout.model_extra
    active = total - layers * layout.block.inactive
    experts, top_k, shared = moe_counts(cfg, model_type)
    dtype = config.get("torch_dtype") or config.get("dtype") or "bfloat16"
    return ModelSpec(
        name=name,
        model_type=model_type or "unknown",
        architecture=archs[0] if archs else "",
        family=normalise_family(model_type) if model_type else "unknown",
        hidden_size=hidden,
        intermediate_size=layout.intermediate_size,
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=dims.kv_heads,
        head_dim=dims.head_dim,
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


def generic_note(model: ModelSpec) -> str | None:
    """What plan and validate say about an architecture estimated from generic fields."""
    if not model.generic:
        return None
    return (
        f"model_type {model.model_type!r} ({model.architecture or 'no architectures'}) is not a "
        "known architecture: the estimate "
        "uses generic config.json fields; `axo-helper trace CONFIG` runs the real model code "
        "on fake tensors and gives an exact figure for its tensors (needs the train extra)"
    )
