"""A local model directory's own chat template and the special tokens its tokenizer adds."""

from __future__ import annotations

import json
from pathlib import Path

from axo_helper.specs import ModelSpec


def local_chat_template(model: ModelSpec) -> tuple[str, set[str]] | None:
    """(chat template text, added special tokens) of a local model directory, if any.

    The template is chat_template.jinja, else tokenizer_config.json's `chat_template`
    ("" when neither has one); added tokens come from tokenizer_config.json and
    tokenizer.json. None for a hub model or an unreadable directory.
    """
    if not model.local_path:
        return None
    root = Path(model.local_path)
    template = ""
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
            for entry in (tok_cfg.get("added_tokens_decoder") or {}).values():
                if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                    added.add(entry["content"])
        tok_file = root / "tokenizer.json"
        if tok_file.is_file():
            for entry in json.loads(tok_file.read_text(encoding="utf-8")).get("added_tokens", []):
                if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                    added.add(entry["content"])
    except (OSError, ValueError):
        return None
    return template, added
