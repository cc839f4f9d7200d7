"""Axolotl's `unfrozen_parameters` for a partial fine-tune ("freeze"), written and read.

Axolotl 0.19 (utils/freeze.py freeze_layers_except) freezes every parameter whose name
no pattern matches. A pattern is a regular expression matched at the start of the name
(re.match), in which every "." not followed by "+" is a literal dot; a trailing
"[a:b]" is an index range, not a character class, so no pattern here ends with "]".

The patterns name the last blocks one by one (`^model.layers.(14|15).`), the final
norm, and the output head when it trains: a tied head is the input embedding's tensor,
which named_parameters() lists as embed_tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from axo_helper.specs import ModelSpec, TrainSetup


@dataclass(frozen=True)
class Names:
    """Where a model type keeps its blocks, final norm and embeddings (parameter names)."""

    blocks: str
    final_norm: str
    embedding: str
    head: str


_DEFAULT = Names("model.layers", "model.norm", "model.embed_tokens", "lm_head")
# transformers' module paths for the model types that do not follow the Llama layout.
_NAMES: dict[str, Names] = {
    "gpt2": Names("transformer.h", "transformer.ln_f", "transformer.wte", "lm_head"),
    "falcon": Names("transformer.h", "transformer.ln_f", "transformer.word_embeddings", "lm_head"),
    "qwen": Names("transformer.h", "transformer.ln_f", "transformer.wte", "lm_head"),
    "gpt_neox": Names(
        "gpt_neox.layers", "gpt_neox.final_layer_norm", "gpt_neox.embed_in", "embed_out"
    ),
    "phi": Names("model.layers", "model.final_layernorm", "model.embed_tokens", "lm_head"),
}
_BLOCKS = re.compile(r"^\^?(?P<prefix>[\w.]+)\.\((?P<ids>\d+(?:\|\d+)*)\)\.$")


def names_of(model: ModelSpec) -> Names:
    return _NAMES.get(model.model_type, _DEFAULT)


def unfrozen_parameters(setup: TrainSetup) -> list[str]:
    """The patterns that leave the last `setup.trainable_layers` blocks trainable."""
    m = setup.model
    n = names_of(m)
    first = m.num_layers - max(1, min(setup.trainable_layers, m.num_layers))
    ids = "|".join(str(i) for i in range(first, m.num_layers))
    patterns = [f"^{n.blocks}.({ids}).", f"^{n.final_norm}."]
    if setup.train_head:
        patterns.append(f"^{n.embedding}." if m.tie_word_embeddings else f"^{n.head}.")
    return patterns


@dataclass(frozen=True)
class Unfrozen:
    """What a config's unfrozen_parameters train, when they are ours to read."""

    trainable_layers: int
    train_head: bool


def read_unfrozen(patterns: Sequence[str], model: ModelSpec) -> Unfrozen | None:
    """The freeze setup of patterns this module writes (the last blocks, contiguous);
    None for any other list, whose memory the estimate cannot size by layers."""
    n = names_of(model)
    layers: set[int] = set()
    head = False
    for raw in patterns:
        p = str(raw).strip()
        found = _BLOCKS.match(p)
        if found and found["prefix"] == n.blocks:
            layers.update(int(i) for i in found["ids"].split("|"))
        elif p.lstrip("^") in (f"{n.head}.", f"{n.embedding}."):
            head = True
        elif p.lstrip("^") != f"{n.final_norm}.":
            return None
    if not layers or layers != set(range(model.num_layers - len(layers), model.num_layers)):
        return None
    return Unfrozen(trainable_layers=len(layers), train_head=head)
