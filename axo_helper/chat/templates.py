"""What each Axolotl named chat template axo-helper chooses writes: its special tokens,
the token that ends an assistant turn, and what it does with a system message.

tests/chat/test_chat_axolotl_templates.py renders Axolotl's own templates
(axolotl.utils.chat_templates) to check every row here, so a change in Axolotl shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# own: a system turn of its own; folded: prepended to the first user turn; omitted:
# left out of a conversation that ends with an answer (mistral_v2v3 adds it to the
# last message only, a user turn at inference); refused: the template raises on a
# system message (Axolotl's preprocessing then fails).
SystemRole = Literal["own", "folded", "omitted", "refused"]

IM = frozenset({"<|im_start|>", "<|im_end|>"})


@dataclass(frozen=True)
class TemplateFacts:
    """A chat template's turn structure, as the config keys need it."""

    name: str
    tokens: frozenset[str]  # special tokens it writes; each must be one token of the vocabulary
    terminator: str | None  # ends every assistant turn; None: the tokenizer's eos_token
    system: SystemRole


_FACTS = (
    TemplateFacts(
        "llama3",
        frozenset({"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}),
        "<|eot_id|>",
        "own",
    ),
    TemplateFacts("chatml", IM, "<|im_end|>", "own"),
    TemplateFacts("qwen_25", IM, "<|im_end|>", "own"),
    TemplateFacts("qwen3", IM, "<|im_end|>", "own"),
    TemplateFacts(
        "gemma", frozenset({"<start_of_turn>", "<end_of_turn>"}), "<end_of_turn>", "refused"
    ),
    TemplateFacts(
        "phi_3", frozenset({"<|system|>", "<|user|>", "<|assistant|>", "<|end|>"}), "<|end|>", "own"
    ),
    # The Mistral formats end an answer with the eos token itself; v1 writes [INST] as
    # plain text (the Llama 2 vocabulary has no such token), v2/v3 as control tokens.
    TemplateFacts("mistral_v1", frozenset(), None, "folded"),
    TemplateFacts("mistral_v2v3", frozenset({"[INST]", "[/INST]"}), None, "omitted"),
)
FACTS = {f.name: f for f in _FACTS}

# Turn terminators looked for in a model's own template, in this order.
KNOWN_EOT_TOKENS = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>")


_PROBE_SYSTEM = "axo-probe-system-turn"


def facts_of_text(template: str, vocabulary: frozenset[str]) -> TemplateFacts:
    """The facts of a tokenizer's own Jinja template, read from its text.

    The terminator is the first known turn token the template writes that the
    vocabulary holds as one token; without one, turns end with the eos token.
    """
    terminator = next((t for t in KNOWN_EOT_TOKENS if t in template and t in vocabulary), None)
    return TemplateFacts(
        "tokenizer_default",
        frozenset(t for t in KNOWN_EOT_TOKENS if t in template),
        terminator,
        _system_role(template),
    )


def _system_role(template: str) -> SystemRole:
    """What the template does with a system turn, found by rendering a conversation
    with one: the text alone misses a template that quietly leaves it out (Mistral
    v0.3's own puts it into the last user turn only, absent when an answer ends it)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    # As transformers renders chat templates (trim/lstrip blocks, loop controls).
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = raise_exception
    messages = [
        {"role": "system", "content": _PROBE_SYSTEM},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    try:
        text = env.from_string(template).render(
            messages=messages, bos_token="", eos_token="", add_generation_prompt=False
        )
    except TemplateError as exc:
        # Gemma's own template, like Axolotl's copy, raises this on a system turn; other
        # failures (a tag or global only transformers defines) prove nothing.
        if "system role not supported" in str(exc).lower():
            return "refused"
        return "refused" if "system role not supported" in template.lower() else "own"
    return "own" if _PROBE_SYSTEM in text else "omitted"
