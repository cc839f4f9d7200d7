"""The special tokens a model's vocabulary holds as single tokens, and its base eos.

Hub and preset models are known by family and vocabulary size (each row names the
tokenizer it describes); a local model by its own tokenizer (ModelSpec.tokenizer, read at inspection).
"""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.specs import ModelSpec


@dataclass(frozen=True)
class Vocab:
    name: str
    specials: frozenset[str]  # tokens that encode to one id
    eos: str | None  # the (base) tokenizer's eos_token


_LLAMA2 = frozenset({"<s>", "</s>", "<unk>"})
_QWEN = frozenset({"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
# (vocab, families, smallest and largest vocab_size). Sources: each tokenizer.json's
# added_tokens and tokenizer_config.json's eos_token on the hub.
_KNOWN = (
    (
        Vocab(
            "llama3",
            frozenset(
                {
                    "<|begin_of_text|>",
                    "<|end_of_text|>",
                    "<|start_header_id|>",
                    "<|end_header_id|>",
                    "<|eot_id|>",
                }
            ),
            "<|end_of_text|>",
        ),
        ("llama",),
        128_000,
        130_000,
    ),
    # Llama 2's SentencePiece vocabulary: TinyLlama, Mistral v0.1, Mixtral 8x7B.
    (Vocab("llama2", _LLAMA2, "</s>"), ("llama", "mistral", "mixtral"), 32_000, 32_000),
    (
        Vocab("mistral_v3", _LLAMA2 | {"[INST]", "[/INST]"}, "</s>"),
        ("mistral", "mixtral"),
        32_768,
        32_768,
    ),
    (Vocab("smollm2", _QWEN, "<|endoftext|>"), ("llama",), 49_152, 49_152),
    (
        Vocab("qwen", _QWEN, "<|endoftext|>"),
        ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"),
        150_000,
        160_000,
    ),
    (
        Vocab("gemma", frozenset({"<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"}), "<eos>"),
        ("gemma", "gemma2"),
        256_000,
        256_000,
    ),
    (
        Vocab(
            "phi3",
            _LLAMA2 | {"<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"},
            "<|endoftext|>",
        ),
        ("phi3",),
        32_064,
        32_064,
    ),
    (Vocab("phi4", _QWEN | {"<|im_sep|>"}, "<|endoftext|>"), ("phi3",), 100_352, 100_352),
)


def _table_vocab(model: ModelSpec) -> Vocab | None:
    for vocab, families, low, high in _KNOWN:
        known = model.family in families or model.model_type in families
        if known and low <= model.vocab_size <= high:
            return vocab
    return None


def vocab_of(model: ModelSpec) -> Vocab | None:
    """The model's vocabulary; None when neither its files nor the table know it.

    A local model's own files decide which tokens it has; the table still names its
    kind (so a local Llama 3 checkpoint gets llama3's template).
    """
    table = _table_vocab(model)
    local = model.tokenizer
    if local is not None:
        return Vocab(table.name if table else "local", local.added, local.eos)
    return table
