"""Step 1: parse the YAML (once, bounded: axo_helper/yamlload.py), and know the line of
every key (safe_load loses lines)."""

from __future__ import annotations

import contextlib
from typing import Any

import yaml

from axo_helper.errors import ConfigError
from axo_helper.yamlload import load_yaml

KeyPath = tuple[str | int, ...]


class LineMap:
    """Key path -> 1-based line, from the YAML compose tree (safe_load loses lines)."""

    def __init__(self, text: str = "", *, root: yaml.Node | None = None):
        """From the composed root (parse_config passes it), else by composing text."""
        self._lines: dict[KeyPath, int] = {}
        # (path, earlier line, later line): YAML loaders keep the later value silently.
        self.duplicates: list[tuple[KeyPath, int, int]] = []
        if root is None and text:
            try:
                root = load_yaml(text)[1]
            except ConfigError:
                root = None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key: str | int = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag.endswith(":int"):
                    with contextlib.suppress(ValueError):
                        key = int(key_node.value)
                child = (*path, key)
                line = key_node.start_mark.line + 1
                if child in self._lines:
                    self.duplicates.append((child, self._lines[child], line))
                self._lines[child] = line  # the later one is the value that counts
                self._walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = (*path, i)
                self._lines.setdefault(child, item.start_mark.line + 1)
                self._walk(item, child)

    def line(self, path: KeyPath) -> int | None:
        """The line of `path`, else of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return None


def dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def parse_config(text: str, source: str = "config") -> tuple[dict[str, Any], LineMap]:
    """Parse YAML text into a mapping; ConfigError (with line and column) otherwise."""
    data, root = load_yaml(text, source)
    if data is None:
        raise ConfigError(f"{source} is empty", hint="an Axolotl config is a YAML mapping of keys")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source} is a YAML {type(data).__name__}, not a mapping of keys",
            hint="an Axolotl config starts with lines such as `base_model: ...`",
        )
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise ConfigError(
            f"{source} has non-text keys: {bad!r}", hint="quote them or fix the indentation"
        )
    return data, LineMap(root=root)
