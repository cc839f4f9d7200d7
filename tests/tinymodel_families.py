"""Tiny models of each model family in presets/models/, for the chat preprocessing tests.

Each row is a `TinyFamily` (axo_helper/tinymodel.py): the family's config and model
classes, its vocabulary's special tokens with its bos/eos/pad, and its real vocabulary
size (the config pads to it, so chat/vocab.py recognises the vocabulary as it would
the real checkpoint's). Sources: each family's tokenizer.json added_tokens and
tokenizer_config.json (eos of the base release) on the hub, as in chat/vocab.py.

The rows are base checkpoints (no chat template), the way the presets' base releases
come; `with_template` gives the instruct-like variant that ships one. Layers are tiny:
preprocessing never loads the weights, and the padded embedding is the only size.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from axo_helper.tinymodel import TinyFamily, build_tiny_model

_MOE = (("num_experts_per_tok", 1), ("moe_intermediate_size", 32))

_LLAMA2 = ("<unk>", "<s>", "</s>")
_QWEN = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_LLAMA3 = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
)
_PHI3 = (*_LLAMA2, "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")


def _llama2(name: str, config: str, model: str, extra: tuple = ()) -> TinyFamily:
    return TinyFamily(
        name, config, model, _LLAMA2, "</s>", "<s>", unk="<unk>", vocab_size=32_000,
        config=extra,
    )  # fmt: skip


def _qwen(name: str, config: str, model: str, extra: tuple = ()) -> TinyFamily:
    return TinyFamily(
        name, config, model, _QWEN, "<|endoftext|>", pad="<|endoftext|>",
        vocab_size=151_936, config=extra,
    )  # fmt: skip


# name -> tiny base model of that family; names match the presets they stand for.
_ALL = (
        TinyFamily(
            "llama3", "LlamaConfig", "LlamaForCausalLM", _LLAMA3, "<|end_of_text|>",
            "<|begin_of_text|>", pad="<|finetune_right_pad_id|>", vocab_size=128_256,
        ),
        _llama2("tinyllama", "LlamaConfig", "LlamaForCausalLM"),
        TinyFamily(
            "smollm2", "LlamaConfig", "LlamaForCausalLM", _QWEN, "<|endoftext|>",
            "<|endoftext|>", pad="<|endoftext|>", vocab_size=49_152,
        ),
        TinyFamily(
            "mistral", "MistralConfig", "MistralForCausalLM", (*_LLAMA2, "[INST]", "[/INST]"),
            "</s>", "<s>", unk="<unk>", vocab_size=32_768,
        ),
        _llama2("mixtral", "MixtralConfig", "MixtralForCausalLM",
                (("num_local_experts", 2), ("num_experts_per_tok", 1))),
        _qwen("qwen2", "Qwen2Config", "Qwen2ForCausalLM"),
        _qwen("qwen2_moe", "Qwen2MoeConfig", "Qwen2MoeForCausalLM",
              (("num_experts", 2), ("shared_expert_intermediate_size", 32), *_MOE)),
        _qwen("qwen3", "Qwen3Config", "Qwen3ForCausalLM", (("head_dim", 16),)),
        _qwen("qwen3_moe", "Qwen3MoeConfig", "Qwen3MoeForCausalLM",
              (("head_dim", 16), ("num_experts", 2), *_MOE)),
        TinyFamily(
            "gemma2", "Gemma2Config", "Gemma2ForCausalLM",
            ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
            "<eos>", "<bos>", pad="<pad>", unk="<unk>", vocab_size=256_000,
            config=(("head_dim", 16),),
        ),
        TinyFamily(
            "phi3", "Phi3Config", "Phi3ForCausalLM", _PHI3, "<|endoftext|>", "<s>",
            pad="<|endoftext|>", unk="<unk>", vocab_size=32_064,
        ),
        # Phi-4 is model_type phi3 with a ChatML-style vocabulary of its own.
        TinyFamily(
            "phi4", "Phi3Config", "Phi3ForCausalLM", (*_QWEN, "<|im_sep|>"), "<|endoftext|>",
            "<|endoftext|>", pad="<|endoftext|>", vocab_size=100_352,
        ),
)  # fmt: skip
FAMILIES: dict[str, TinyFamily] = {f.name: f for f in _ALL}


def with_template(family: TinyFamily, template: str) -> TinyFamily:
    """The same family shipping `template` as its tokenizer's chat template."""
    return replace(family, name=f"{family.name}-chat", chat_template=template)


def build(family: TinyFamily, root: Path) -> Path:
    """The tiny model of `family` under root/<name> (reused when already built): widths
    every family's config accepts, head_dim 16 with 2 heads and 1 kv head."""
    folder = build_tiny_model(
        root / family.name, vocab_size=512, hidden_size=32, intermediate_size=64, layers=1,
        heads=2, kv_heads=1, family=family,
    )  # fmt: skip
    return folder
