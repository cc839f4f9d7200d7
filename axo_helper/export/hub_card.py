"""The model card's Hub conventions: what the card PEFT, the Trainer and Axolotl wrote
in output/README.md contributes (its front matter, Axolotl's badge, the "See axolotl
config" block, the Trainer's training procedure), hub ids only where the Hub expects
one, and no host paths in a card meant to be published.

card.py gathers the facts; this module reads the card that was there before it and
makes every value publishable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from axo_helper.dataset.files import SUFFIXES as DATA_SUFFIXES
from axo_helper.export.files import read_json
from axo_helper.model.local import looks_like_path

_FRONT = re.compile(r"\A---\n(.*?\n)?---\n", re.S)
_BADGE = re.compile(r'^\[<img [^\n]*alt="Built with Axolotl"[^\n]*$', re.M)
_CONFIG = re.compile(r"<details><summary>See axolotl config</summary>.*?</details>(?:<br>)?", re.S)
# The Trainer's card: from its hyperparameters to the framework versions (the sections
# before it are placeholders: "More information needed").
_PROCEDURE = re.compile(r"^## Training procedure\n.*", re.S | re.M)
# A Hugging Face cache snapshot: .../models--org--name/snapshots/<revision>
_CACHE_SNAPSHOT = re.compile(r"(?:^|/)models--([^/]+?)--([^/]+)/snapshots/[^/]+/?$")
# Any other absolute path of two or more parts (a moved run's old directory in the
# config's comments): not after a word, "/", ":" (URLs) or "<" (HTML closing tags).
_ABSOLUTE = re.compile(r"(?<![\w.:/<~-])~?/(?:[\w.@+-]+/)+[\w.@+-]+/?")
# Front-matter keys the license of a base model is given by (Hub model card metadata).
LICENSE_KEYS = ("license", "license_name", "license_link")


@dataclass(frozen=True)
class TrainerCard:
    """The parts of output/README.md the exported card keeps (None: not there)."""

    front: dict[str, Any]
    badge: str | None
    config_block: str | None
    procedure: str | None


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(the YAML front matter as a dict, the body) of a model card; {} when it has none."""
    match = _FRONT.match(text)
    if not match:
        return {}, text
    try:
        front = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError:
        front = {}
    return (front if isinstance(front, dict) else {}), text[match.end() :]


def read_trainer_card(path: Path) -> TrainerCard | None:
    """The card PEFT/the Trainer/Axolotl wrote (output/README.md), or None without one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    front, body = front_matter(text)

    def part(pattern: re.Pattern[str]) -> str | None:
        found = pattern.search(body)
        return found.group(0).strip() if found else None

    return TrainerCard(front, part(_BADGE), part(_CONFIG), part(_PROCEDURE))


def base_license(folders: Iterable[Path]) -> dict[str, Any]:
    """The license fields of the base model's own card (README.md), found offline."""
    for folder in folders:
        card = read_trainer_card(folder / "README.md")
        if card is not None:
            return {k: card.front[k] for k in LICENSE_KEYS if card.front.get(k)}
    return {}


def hub_id(name: Any) -> str | None:
    """`name` when it can only name a Hub repository (not a local path or data file)."""
    if not isinstance(name, str) or not name or looks_like_path(name):
        return None
    if Path(name).suffix.lower() in DATA_SUFFIXES or Path(name).expanduser().exists():
        return None
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def base_hub_id(base_model: str) -> str | None:
    """The base model's hub id: itself, the repo of a Hugging Face cache snapshot, or
    the `_name_or_path` a local checkpoint's config.json records."""
    if (own := hub_id(base_model)) is not None:
        return own
    local = Path(base_model).expanduser()
    snapshot = _CACHE_SNAPSHOT.search(local.as_posix())
    if snapshot:
        return hub_id(f"{snapshot.group(1)}/{snapshot.group(2)}")
    config = read_json(local / "config.json") if local.is_dir() else None
    origin = config.get("_name_or_path") if isinstance(config, dict) else None
    # A single-name id ("gpt2") is also how a local directory name reads: want org/name.
    return hub_id(origin) if isinstance(origin, str) and "/" in origin else None


def _local_paths(value: Any) -> Iterable[str]:
    """Every string in a config that is an absolute (or ~) path."""
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _local_paths(v)
    elif isinstance(value, list):
        for v in value:
            yield from _local_paths(v)
    elif isinstance(value, str) and value.startswith(("/", "~")) and "\n" not in value:
        yield value


def path_names(
    config: Mapping[str, Any], run_dir: Path, base_model: str, base_name: str
) -> dict[str, str]:
    """Host path -> what a published card says instead.

    The run directory and paths under it become relative to its parent (`my-run/output`),
    the base model its hub id or name, any other path its file name. The forms without
    the leading slash are there too: the Trainer names its card after output_dir with
    "./" stripped.
    """
    run = run_dir.resolve()
    names: dict[str, str] = {}
    for raw in {*_local_paths(config), str(run_dir), str(run), base_model}:
        path = Path(raw).expanduser()
        if raw == base_model:
            name = base_name
        elif path == run or run in path.parents:
            name = path.relative_to(run.parent).as_posix()
        else:
            name = path.name or raw
        if raw.startswith(("/", "~")) and len(raw) > 1:
            names[raw.rstrip("/")] = name
            names[raw.lstrip("./")] = name
            names[str(path).rstrip("/")] = name
    return {k: v for k, v in names.items() if k and k != v}


def scrub(value: Any, names: Mapping[str, str]) -> Any:
    """`value` (text, or a front-matter value) with every host path in `names` replaced,
    and any other absolute path by its last part."""
    if isinstance(value, Mapping):
        return {k: scrub(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, names) for v in value]
    if not isinstance(value, str):
        return value
    if names:
        keys = sorted(names, key=len, reverse=True)  # a path before its parent directory
        known = re.compile("|".join(rf"(?<![\w./-]){re.escape(k)}(?![\w.-])" for k in keys))
        value = known.sub(lambda m: names[m.group(0)], value)
    return _ABSOLUTE.sub(lambda m: Path(m.group(0).rstrip("/")).name, value)
