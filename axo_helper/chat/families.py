"""Model family -> Axolotl's named chat template and the token that ends a turn.

render asks `chat_template_choice` what to write for conversational data; the tables
here are the only copy of which family trains with which template.
"""

from __future__ import annotations

from axo_helper.chat.tokenizer import local_chat_template
from axo_helper.specs import ModelSpec

# Turn-ending tokens of the chat templates axo-helper names, and the families whose
# own tokenizer template ends turns with them. Axolotl refuses an eot token that
# encodes to several tokens, so one is only written when the vocabulary has it.
EOT_BY_TEMPLATE = {
    "llama3": "<|eot_id|>",
    "qwen_25": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "gemma": "<end_of_turn>",
    "phi_3": "<|end|>",
}
# family -> (named template, smallest vocabulary that has its special tokens). The
# vocabulary check keeps Llama-2-vocabulary models (TinyLlama, SmolLM2: model_type
# llama) off the Llama 3 template, whose <|eot_id|> they would split into pieces.
TEMPLATE_BY_FAMILY = {
    "llama": ("llama3", 128_000),
    "qwen2": ("qwen_25", 150_000),
    "qwen2_moe": ("qwen_25", 150_000),
    "qwen3": ("qwen3", 150_000),
    "qwen3_moe": ("qwen3", 150_000),
    "gemma": ("gemma", 256_000),
    "gemma2": ("gemma", 256_000),
    "gemma3": ("gemma", 256_000),
    "phi3": ("phi_3", 32_000),
    "mistral": ("mistral_v2v3", 32_768),
}
# Turn terminators looked for in a model's own template, in this order.
KNOWN_EOT_TOKENS = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>")


def family_template(model: ModelSpec) -> str | None:
    """The named Axolotl chat template matching the model's family and vocabulary."""
    for key in (model.family, model.model_type):
        entry = TEMPLATE_BY_FAMILY.get(key)
        if entry and model.vocab_size >= entry[1]:
            return entry[0]
    return None


def chat_template_choice(model: ModelSpec) -> tuple[str, list[str], str]:
    """(chat_template, eot_tokens, reason) for conversational data.

    eot_tokens is written only when the token is certain to be one token of the
    vocabulary (Axolotl refuses a split one); otherwise Axolotl uses the eos token.
    """
    local = local_chat_template(model)
    named = family_template(model)
    if model.chat_template or (local and local[0]):
        eot: list[str] = []
        if local is not None:
            template, added = local
            eot = [t for t in KNOWN_EOT_TOKENS if t in template and t in added][:1]
        elif named in EOT_BY_TEMPLATE:
            eot = [EOT_BY_TEMPLATE[named]]
        return "tokenizer_default", eot, "the model's own chat template, as inference will use it"
    if named:
        eot = [EOT_BY_TEMPLATE[named]] if named in EOT_BY_TEMPLATE else []
        return named, eot, f"the tokenizer has none; {named} matches the {model.family} vocabulary"
    # No template and no family match: chatml text with the eos token ending turns
    # (eot_tokens left unset: Axolotl then uses the eos token, which always exists).
    return (
        "chatml",
        [],
        "the tokenizer has none and no family template fits its vocabulary; chatml is the common default",
    )
