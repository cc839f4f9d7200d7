"""Model -> the Axolotl named chat template for its vocabulary, and whether the
checkpoint is a base model or a chat (instruct) release.

The template is chosen by vocabulary, not by model_type alone: Mixtral 8x7B and
TinyLlama have Llama 2's 32,000-token vocabulary, where only mistral_v1's plain-text
[INST] markers are single tokens' worth of text; Phi-4 (model_type phi3) has a
ChatML-style vocabulary, not Phi-3's <|end|>. It trains with chatml: Axolotl 0.19
ships a phi_4.jinja, but its `chat_template` setting does not accept the name (the
ChatTemplate enum stops at phi_35, still so on Axolotl's main branch), and that file
is Phi-4-reasoning's format with a long built-in system prompt.
"""

from __future__ import annotations

import re

from axo_helper.chat.templates import KNOWN_EOT_TOKENS
from axo_helper.chat.vocab import Vocab
from axo_helper.model.presets import find_preset
from axo_helper.specs import ModelSpec

__all__ = ["KNOWN_EOT_TOKENS", "is_instruct", "named_template"]

# vocabulary (chat/vocab.py) -> the Axolotl template whose special tokens it holds.
TEMPLATE_BY_VOCAB = {
    "llama3": "llama3",
    "llama2": "mistral_v1",
    "mistral_v3": "mistral_v2v3",
    "smollm2": "chatml",
    "gemma": "gemma",
    "phi3": "phi_3",
    "phi4": "chatml",  # same <|im_start|>/<|im_end|> tokens; see the module docstring
}
_QWEN_BY_FAMILY = {"qwen3": "qwen3", "qwen3_moe": "qwen3"}
_CHAT_SUFFIX = re.compile(r"[-_](instruct|chat|it)(-\d+)?$", re.IGNORECASE)


def named_template(model: ModelSpec, vocab: Vocab | None) -> str | None:
    """The Axolotl template matching the model's vocabulary; None when it is unknown."""
    if vocab is None:
        return None
    if vocab.name == "qwen":
        return _QWEN_BY_FAMILY.get(model.family, "qwen_25")
    return TEMPLATE_BY_VOCAB.get(vocab.name)


def is_instruct(model: ModelSpec) -> bool:
    """Whether the checkpoint is a chat release (its tokenizer's eos already ends a turn).

    A "-Instruct"/"-Chat"/"-it" name, a preset's instruct variant, or a preset released
    only post-trained (instruct: [] with a chat template: Phi-4, Qwen3, Llama 3.3).
    """
    name = model.hf_id or model.name
    if _CHAT_SUFFIX.search(name.rstrip("/")):
        return True
    found = find_preset(name)
    if found is None:
        return False
    preset, variant = found
    return variant or (not preset.instruct and preset.chat_template)
