"""The one loader for YAML a user hands us (Axolotl configs): bounded, and parsed once.

libyaml's C parser when PyYAML has it (the pure-Python one takes minutes on a big
file), a size cap, and two limits checked on the composed node graph before any
Python object is built:

- depth: a 3000-deep mapping would exhaust Python's recursion in the constructor;
- expanded size: aliases share one node when composed, but every reader that walks
  the result (line numbers, the schema, an error message quoting a value) pays for
  each use. Nine levels of `&a [*a, *a, ...]` are a few hundred bytes and 10^9 nodes.

Both walks are iterative and visit each distinct node once, so a hostile file costs
milliseconds to refuse. The composed root is returned with the data: line numbers
(validate/lines.py) come from it instead of a second parse.
"""

from __future__ import annotations

from typing import Any

import yaml

from axo_helper.errors import ConfigError

# An Axolotl config is a few kilobytes; 16 MiB is far past any real one.
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
# Values that aliases add beyond the file's own (a file without aliases adds none).
MAX_ALIAS_EXPANSION = 100_000

_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YAMLSyntaxError(ConfigError):
    """Not YAML; carries the 1-based line and column when the parser knew them."""

    def __init__(self, message: str, hint: str, line: int | None, column: int | None):
        super().__init__(message, hint)
        self.line, self.column = line, column


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_shape(root: yaml.Node, source: str) -> None:
    """Refuse a graph deeper than MAX_DEPTH or whose aliases add more than MAX_ALIAS_EXPANSION values."""
    # Post-order without recursion: expanded size of a node = 1 + its children's.
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            size[key] = total
            if total - len(size) > MAX_ALIAS_EXPANSION:
                raise ConfigError(
                    f"{source} expands to more than {MAX_ALIAS_EXPANSION:,} values "
                    "(YAML aliases `*name` repeating anchors `&name`)",
                    hint="write the values out, or use fewer aliases: an Axolotl config is small",
                )
            continue
        if key in size:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(source)
        if key in on_path:  # a recursive alias: a node that contains itself
            raise ConfigError(f"{source} has a value that contains itself (a recursive alias)")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in size)


# Below this nesting libyaml's (recursive, C) composer is safe; past ~10^5 it overflows
# the C stack. A text whose brackets and line lengths cannot reach it skips the scan.
_COMPOSER_SAFE = 1000


def _could_nest_deeply(text: str) -> bool:
    """A cheap upper bound: flow nesting needs brackets, block nesting needs columns."""
    if text.count("[") + text.count("{") > _COMPOSER_SAFE:
        return True
    return max(map(len, text.splitlines()), default=0) > _COMPOSER_SAFE


def _check_depth_streaming(text: str, source: str) -> None:
    """Depth from the parser's events, before the composer recurses over them."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(source)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _too_deep(source: str) -> ConfigError:
    return ConfigError(
        f"{source} nests more than {MAX_DEPTH} levels deep",
        hint="an Axolotl config is a flat mapping with a few nested blocks; check the indentation",
    )


def _syntax_error(exc: yaml.YAMLError, source: str) -> YAMLSyntaxError:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return YAMLSyntaxError(
        f"{source} is not valid YAML{where}: {problem}",
        hint="fix the syntax there (indentation, an unquoted ': ' or '#', a tab)",
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
    )


def load_yaml(text: str, source: str = "config") -> tuple[Any, yaml.Node | None]:
    """(the data, the composed root node); ConfigError for anything unsafe or not YAML."""
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"{source} is {len(text) / 2**20:.0f} MiB; an Axolotl config is a few kilobytes",
            hint=f"is this the right file? configs over {MAX_BYTES // 2**20} MiB are refused",
        )
    try:
        if _could_nest_deeply(text):
            _check_depth_streaming(text, source)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_shape(root, source)
        return loader.construct_document(root), root
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    except RecursionError:  # the limits above make this unreachable; never a traceback
        raise ConfigError(f"{source} nests too deeply to read") from None
    finally:
        loader.dispose()


def safe_load(text: str, source: str = "config") -> Any:
    """The data only (load_yaml without the node)."""
    return load_yaml(text, source)[0]
