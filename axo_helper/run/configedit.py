"""Rewriting top-level keys of an Axolotl config as `run` needs it, keeping the user's layout.

Reading a config's values (batch_of, setup_from_config) is axo_helper/config/read.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from axo_helper.config.templating import yaml_value
from axo_helper.errors import ConfigError
from axo_helper.yamlload import safe_load


def _replace_line(lines: list[str], key: str, new_line: str) -> None:
    """Put new_line in place of key's line (and its block value), or append it."""
    pattern = re.compile(rf"^{re.escape(key)}\s*:(.*)$")
    index = next((i for i, ln in enumerate(lines) if pattern.match(ln)), None)
    if index is None:
        lines.append(new_line)
        return
    end = index + 1
    rest = pattern.match(lines[index]).group(1)  # type: ignore[union-attr]
    if not rest.split("#", 1)[0].strip() or rest.strip().startswith(("|", ">")):
        # A block value: drop its indented (or blank) continuation lines.
        while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t", "-")):
            end += 1
        # Blank lines that separated sections belong after the new line.
        while end > index + 1 and not lines[end - 1].strip():
            end -= 1
    lines[index:end] = [new_line]


def set_top_level(text: str, changes: Mapping[str, Any], note: str) -> str:
    """Set top-level keys of a YAML config, keeping every other line and comment.

    A key already present has its line replaced (a block value under it is removed);
    a new key is appended. Each changed line carries `# note`. The result is parsed
    back and must equal the original mapping with the changes; otherwise (a layout
    this editor cannot follow, such as anchors) the mapping is dumped plainly with a
    comment saying so, never a wrong file.
    """
    original = safe_load(text) or {}
    lines = text.splitlines()
    for key, value in changes.items():
        _replace_line(lines, key, f"{key}: {yaml_value(value)}  # {note}")
    result = "\n".join(lines) + "\n"
    expected = {**original, **changes}
    try:
        ok = safe_load(result) == expected
    except ConfigError:
        ok = False
    if not ok:
        result = (
            f"# rewritten by axo-helper ({note}); the original layout could not be kept\n"
            + yaml.safe_dump(expected, sort_keys=False, allow_unicode=True)
        )
    return result


def inputs_are_local(cfg: Mapping[str, Any], cwd: Path) -> bool:
    """True when the model, tokenizer and every dataset are local paths (HF_HUB_OFFLINE=1)."""

    def local(value: Any) -> bool:
        if not isinstance(value, str) or not value:
            return False
        p = Path(value).expanduser()
        return (p if p.is_absolute() else cwd / p).exists()

    if not local(cfg.get("base_model")):
        return False
    for key in ("base_model_config", "tokenizer_config"):
        if cfg.get(key) and not local(cfg.get(key)):
            return False
    if cfg.get("pretraining_dataset"):
        return False
    datasets = cfg.get("datasets") or []
    if not isinstance(datasets, list):
        return False
    for entry in datasets:
        if not isinstance(entry, Mapping) or not local(entry.get("path")):
            return False
    return True
