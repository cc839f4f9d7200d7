"""A local checkpoint folder: its config.json and its tokenizer (chat template, added
tokens, eos), read once here so that chat decisions are pure over the ModelSpec."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from axo_helper.errors import ModelError, ModelPathError
from axo_helper.model.facts import from_config
from axo_helper.specs import ModelSpec, TokenizerFacts

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def has_chat_template(folder: Path) -> bool:
    """Whether the tokenizer files in `folder` carry a chat template."""
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tok = folder / "tokenizer_config.json"
    if not tok.is_file():
        return False
    try:
        data = json.loads(tok.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False  # a broken tokenizer file is the dataset scanner's concern
    return isinstance(data, dict) and bool(data.get("chat_template"))


def read_config(path: Path, what: str) -> dict[str, Any]:
    """A config.json as a dict; unreadable or non-object JSON is a ModelError naming `what`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{what} is not valid JSON (line {exc.lineno}: {exc.msg})",
            hint="re-download the checkpoint's config.json",
        ) from None
    except RecursionError:
        raise ModelError(
            f"{what} nests too deeply to read (thousands of levels)",
            hint="a config.json is a flat object of numbers and names; "
            "re-download the checkpoint's config.json",
        ) from None
    except UnicodeDecodeError:
        raise ModelError(
            f"{what} is not UTF-8 text (UTF-16 or another encoding)",
            hint="transformers reads config.json as UTF-8; re-save it as UTF-8 "
            "(e.g. iconv -f utf-16 -t utf-8) or re-download it",
        ) from None
    except OSError as exc:
        raise ModelError(
            f"cannot read {what}: {exc.strerror or exc}",
            hint="check the file's permissions, or re-download the checkpoint",
        ) from None
    if not isinstance(data, dict):
        raise ModelError(
            f"{what} is not a JSON object (it holds {_json_kind(data)})",
            hint='a config.json is one object such as {"model_type": "llama", ...}; '
            "re-download the checkpoint's config.json",
        )
    return data


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    kinds = {list: "a list", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def inspect_local(folder: Path, name: str) -> ModelSpec:
    """The ModelSpec of a checkpoint folder, from its config.json."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        hint = (
            "pass the folder of a Hugging Face checkpoint (config.json sits next to the "
            "weights), or an HF id such as meta-llama/Llama-3.1-8B"
        )
        if (folder / "adapter_config.json").is_file():
            hint = (
                "this looks like a LoRA adapter; pass its base model "
                "(base_model_name_or_path in adapter_config.json)"
            )
        raise ModelPathError(f"model directory {name} has no config.json", hint=hint)
    config = read_config(config_path, f"{config_path}")
    # _name_or_path is the repo a checkpoint came from, or a stale local path: keep repo ids.
    origin = config.get("_name_or_path")
    hf_id = origin if isinstance(origin, str) and _REPO_ID.match(origin) else None
    spec = from_config(
        config,
        name=name,
        source="local",
        local_path=str(folder.resolve()),
        hf_id=hf_id,
        chat_template=has_chat_template(folder),
    )
    return replace(spec, tokenizer=read_tokenizer_facts(folder))


def looks_like_path(name: str) -> bool:
    """Whether --model was meant as a path (so a missing one is not looked up on the hub)."""
    return (
        name.startswith(("/", "./", "../", "~", ".\\"))
        or name in (".", "..")
        or (os.sep != "/" and os.sep in name)
    )


def _content(entry: Any) -> str | None:
    """A token given as a string or as an AddedToken dict {"content": ...}."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return str(entry["content"])
    return None


def read_tokenizer_facts(root: Path) -> TokenizerFacts | None:
    """A local model directory's tokenizer as JSON (no transformers import); None when
    unreadable. The template is chat_template.jinja, else tokenizer_config.json's
    `chat_template`; added tokens come from tokenizer_config.json and tokenizer.json.
    """
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
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return TokenizerFacts(template, frozenset(added), eos)
