"""The trained tokenizer: which files make it up, copying it into a variant, and the
facts export needs from it (chat template, eos token, the ids of its tokens).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError
from axo_helper.export.files import read_json

# Files a tokenizer's save_pretrained may write (transformers 4.x and 5.x, fast and slow).
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "qwen.tiktoken",
        "tokenizer.tiktoken",
    }
)
TOKENIZER_DIRS = frozenset({"additional_chat_templates"})


def copy_tokenizer(src: Path, dst: Path) -> list[str]:
    """Copy the trained tokenizer from Axolotl's output_dir; drop any other tokenizer files.

    Axolotl's merge copies the base model's tokenizer; the trained one may have added
    special tokens and a chat template, and mixing files of the two would load neither.
    """
    copied = []
    for name in sorted(TOKENIZER_FILES):
        if (dst / name).is_file() and not (src / name).is_file():
            (dst / name).unlink()
    for name in sorted(TOKENIZER_FILES):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(name)
    for name in TOKENIZER_DIRS:
        if (dst / name).is_dir():
            shutil.rmtree(dst / name)
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
            copied.append(name + "/")
    if "tokenizer_config.json" not in copied:
        raise AxoHelperError(
            f"{src} has no tokenizer files (tokenizer_config.json)",
            hint="Axolotl saves the tokenizer at the end of training; did the run finish?",
        )
    return copied


def _saved_template(folder: Path, tcfg: dict[str, Any]) -> str | None:
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    raw = tcfg.get("chat_template") or (read_json(folder / "chat_template.json") or {}).get(
        "chat_template"
    )
    if isinstance(raw, list):  # named templates: take the default one
        named = {t.get("name"): t.get("template") for t in raw if isinstance(t, dict)}
        raw = named.get("default") or next(iter(named.values()), None)
    return raw if isinstance(raw, str) else None


def tokenizer_facts(folder: Path) -> tuple[str | None, str | None]:
    """(chat template, eos token) of the tokenizer saved in folder."""
    tcfg = read_json(folder / "tokenizer_config.json") or {}
    template = _saved_template(folder, tcfg)
    eos = tcfg.get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    return template, eos if isinstance(eos, str) else None


def _vocab_ids(model: Any) -> dict[str, int]:
    """tokenizer.json's model vocabulary: a dict (BPE, WordPiece) or [piece, score] rows
    (Unigram, where the row number is the id)."""
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):
        return {k: v for k, v in vocab.items() if isinstance(k, str) and isinstance(v, int)}
    if isinstance(vocab, list):
        return {
            row[0]: i
            for i, row in enumerate(vocab)
            if isinstance(row, list) and row and isinstance(row[0], str)
        }
    return {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _added_entries(entries: Any) -> dict[str, int]:
    """tokenizer.json's added_tokens: [{"id": 3, "content": "<|im_end|>", ...}]."""
    return {
        e["content"]: e["id"]
        for e in (entries if isinstance(entries, list) else [])
        if isinstance(e, dict)
        and isinstance(e.get("content"), str)
        and isinstance(e.get("id"), int)
    }


def token_ids(folder: Path) -> dict[str, int]:
    """Token -> id for the tokenizer saved in folder, read from its files, never guessed.

    The model vocabulary of tokenizer.json, then the added tokens (tokenizer.json's
    added_tokens, added_tokens.json, tokenizer_config.json's added_tokens_decoder),
    which win where both name a token: an added token is matched whole before the
    model's pieces. {} when the folder holds none of them.
    """
    tok = _dict(read_json(folder / "tokenizer.json"))
    ids = _vocab_ids(tok.get("model"))
    ids.update(_added_entries(tok.get("added_tokens")))
    added = _dict(read_json(folder / "added_tokens.json"))
    ids.update({k: v for k, v in added.items() if isinstance(v, int)})
    decoder = _dict(_dict(read_json(folder / "tokenizer_config.json")).get("added_tokens_decoder"))
    for key, entry in decoder.items():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str) and key.isdigit():
            ids[entry["content"]] = int(key)
    return ids
