"""Where the exported model stops: the tokens that end a turn the fine-tune trained,
their ids, and generation_config.json carrying them as eos_token_id.

The terminator comes from the run's axolotl.yml (`eot_tokens`,
`special_tokens.eos_token`, `chat_template`) and the trained tokenizer in output/
(its chat template, its eos, the ids of its tokens). A config without those chat
keys did not train turns: export then leaves the base's generation config alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.chat.templates import KNOWN_EOT_TOKENS
from axo_helper.config.read import configured_eos, configured_eot, trains_turns
from axo_helper.export.files import read_json
from axo_helper.export.tokenizer import token_ids, tokenizer_facts

GENERATION_CONFIG = "generation_config.json"
# What transformers' GenerationConfig.from_model_config takes from config.json for
# the ids, used when neither the variant nor the base has a generation_config.json.
_MODEL_CONFIG_IDS = ("bos_token_id", "eos_token_id", "pad_token_id")


@dataclass(frozen=True)
class TurnTerminator:
    """The strings that end a trained turn (end-of-turn tokens first, then the eos)."""

    tokens: tuple[str, ...]
    ids: tuple[int, ...]  # of the tokens that are one token of the trained tokenizer
    unknown: tuple[str, ...]  # tokens the trained tokenizer has no single id for


def _unique(items: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(i for i in items if i is not None))


def end_of_turn_tokens(cfg: Mapping[str, Any], template: str | None) -> list[str]:
    """The end-of-turn tokens that really occur in the trained chat template.

    Axolotl drops a configured eot token the template never writes (it then trains
    none), so those are no terminator; without a usable one, the known turn-ending
    tokens the template writes are (chat/ owns that list). Without a saved template
    the configured tokens are taken as they are.
    """
    wanted = configured_eot(cfg)
    if not template:
        return wanted
    written = [t for t in wanted if t in template]
    return written or [t for t in KNOWN_EOT_TOKENS if t in template]


def turn_terminator(cfg: Mapping[str, Any], tokenizer_dir: Path) -> TurnTerminator | None:
    """The run's turn terminator, or None when its config trains no chat turns."""
    if not trains_turns(cfg):
        return None
    template, eos = tokenizer_facts(tokenizer_dir)
    tokens = _unique([*end_of_turn_tokens(cfg, template), configured_eos(cfg), eos])
    vocab = token_ids(tokenizer_dir)
    return TurnTerminator(
        tokens=tuple(tokens),
        ids=tuple(_unique(vocab.get(t) for t in tokens)),
        unknown=tuple(t for t in tokens if t not in vocab),
    )


def terminator_warnings(term: TurnTerminator | None) -> list[str]:
    if term is None or not term.unknown:
        return []
    names = ", ".join(term.unknown)
    return [
        f"the turn terminator {names} is not a token of the trained tokenizer: "
        "generation_config.json cannot stop at it (the Modelfile's stop strings still do)"
    ]


def _id_list(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _base_generation(folders: Sequence[Path]) -> dict[str, Any]:
    """The first generation_config.json among folders; else the ids of a config.json."""
    for folder in folders:
        found = read_json(folder / GENERATION_CONFIG)
        if isinstance(found, dict):
            return found
    for folder in folders:
        model_cfg = read_json(folder / "config.json")
        if isinstance(model_cfg, dict):
            return {k: model_cfg[k] for k in _MODEL_CONFIG_IDS if model_cfg.get(k) is not None}
    return {}


def stop_at_terminator(dest: Path, term: TurnTerminator, sources: Sequence[Path] = ()) -> bool:
    """Write dest/generation_config.json with the terminator ids as eos_token_id.

    Starts from dest's own file, else the first of sources that has one (the base's),
    and keeps its other fields; the base's eos ids stay in the list after the
    terminator's, so what stopped the base still stops the fine-tune. False (nothing
    written) when no terminator token has an id.
    """
    if not term.ids:
        return False
    gen = dict(_base_generation([dest, *sources]))
    gen["eos_token_id"] = _unique([*term.ids, *_id_list(gen.get("eos_token_id"))])
    text = json.dumps(gen, indent=2, sort_keys=True) + "\n"
    (dest / GENERATION_CONFIG).write_text(text, encoding="utf-8")
    return True
