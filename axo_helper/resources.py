"""Access to the shipped data folders (presets/, templates/) through importlib.resources.

In a wheel they live inside the package (axo_helper/presets, axo_helper/templates);
in a source checkout or an editable install they are the top-level folders of the
repository. Both are reached through the same Traversable API.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from axo_helper.errors import AxoHelperError


@functools.cache
def data_dir(name: str) -> Traversable:
    """The shipped folder `name` ("presets" or "templates")."""
    inside = resources.files("axo_helper") / name
    if inside.is_dir():
        return inside
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise AxoHelperError(
        f"the shipped folder {name}/ is missing from this installation",
        hint="reinstall axo-helper (pip install --force-reinstall axo-helper)",
    )


def presets_dir() -> Traversable:
    return data_dir("presets")


def templates_dir() -> Traversable:
    return data_dir("templates")


def _read(node: Traversable) -> Any:
    text = node.read_text(encoding="utf-8")
    if node.name.endswith(".json"):
        return json.loads(text)
    # The C loader (when PyYAML was built with libyaml) parses the ~70 presets in a
    # fraction of the pure-Python loader's time: it is most of `plan`'s start-up.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader either way


@functools.cache
def load_preset(relpath: str) -> Any:
    """Parse a YAML or JSON file under presets/, e.g. load_preset("gpus.yaml")."""
    node: Traversable = presets_dir()
    for part in relpath.split("/"):
        node = node / part
    if not node.is_file():
        raise AxoHelperError(f"preset {relpath} is missing from this installation")
    return _read(node)


def iter_preset_files(subdir: str = "") -> list[str]:
    """Relative paths of every YAML/JSON preset under presets/<subdir>, sorted."""
    root: Traversable = presets_dir()
    if subdir:
        for part in subdir.split("/"):
            root = root / part
    found: list[str] = []

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif child.name.endswith((".yaml", ".yml", ".json")):
                found.append(rel)

    if root.is_dir():
        walk(root, f"{subdir}/" if subdir else "")
    return sorted(found)
