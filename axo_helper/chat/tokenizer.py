"""A local model directory's tokenizer facts: its own chat template, the special tokens it
adds, its eos token. Read as JSON, so no transformers import."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.specs import ModelSpec


@dataclass(frozen=True)
class LocalTokenizer:
    template: str  # "" when the tokenizer has no chat template
    added: frozenset[str]  # added (special) tokens: each encodes to one token
    eos: str | None


def _content(entry: Any) -> str | None:
    """A token given as a string or as an AddedToken dict {"content": ...}."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return str(entry["content"])
    return None


def local_tokenizer(model: ModelSpec) -> LocalTokenizer | None:
    """The tokenizer files of a local model directory; None for a hub or preset model
    and for an unreadable directory.

    The template is chat_template.jinja, else tokenizer_config.json's `chat_template`;
    added tokens come from tokenizer_config.json and tokenizer.json.
    """
    if not model.local_path:
        return None
    root = Path(model.local_path)
    template, eos = "", None
    added: set[str] = set()
    try:
        jinja_file = root / "chat_template.jinja"
        if jinja_file.is_file():
            template = jinja_file.read_text(encoding="utf-8")
        cfg_file = root / "tokenizer_config.json"
        if cfg_file.is_file():
            tok_cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            if not template and isinstance(tok_cfg.get("chat_template"), str):
                template = tok_cfg["chat_template"]
            eos = _content(tok_cfg.get("eos_token"))
            added.update(
                filter(None, map(_content, (tok_cfg.get("added_tokens_decoder") or {}).values()))
            )
        tok_file = root / "tokenizer.json"
        if tok_file.is_file():
            tokens = json.loads(tok_file.read_text(encoding="utf-8")).get("added_tokens") or []
            added.update(filter(None, map(_content, tokens)))
    except (OSError, ValueError, AttributeError):
        return None
    return LocalTokenizer(template, frozenset(added), eos)
