"""Inputs shared by the hostile-input tests (tests/hostile/)."""

from __future__ import annotations

from typing import Any

# The config.json of a small Llama: plans in milliseconds, every field a real one has.
TINY_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "vocab_size": 1000,
    "max_position_embeddings": 512,
}
