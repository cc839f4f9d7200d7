"""Shipped model presets (presets/models/*.yaml): loading, and matching a --model name
to one by HF id, alias or a loose spelling; "-Instruct"/"-it"/"-Chat" variants share
their base preset's architecture."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from axo_helper.errors import ModelError
from axo_helper.model.facts import from_config
from axo_helper.resources import iter_preset_files, load_preset
from axo_helper.specs import ModelSpec


@dataclass(frozen=True)
class Preset:
    """One presets/models/*.yaml file."""

    key: str  # the file stem, e.g. "llama-3.1-8b"
    hf_id: str
    aliases: tuple[str, ...]
    instruct: tuple[str, ...]  # HF ids of chat/instruct variants with the same architecture
    chat_template: bool
    config: Mapping[str, Any]
    params_b: float | None = None  # published size, billions (total for MoE)
    active_params_b: float | None = None  # MoE: published active size


_VARIANT_SUFFIX = re.compile(r"[-_ ](instruct|chat|it)$", re.IGNORECASE)


def _loose(name: str) -> str:
    """A spelling-insensitive key: no org, no "meta-" prefix, no separators, lower case."""
    base = name.strip().rstrip("/").split("/")[-1].lower()
    base = base.removeprefix("meta-")
    return re.sub(r"[-_ ]", "", base)


@functools.cache
def _presets() -> tuple[Preset, ...]:
    found: list[Preset] = []
    for rel in iter_preset_files("models"):
        raw = load_preset(rel)
        key = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if not isinstance(raw, dict) or "hf_id" not in raw or "config" not in raw:
            raise ModelError(
                f"preset {rel} is malformed (needs hf_id and config)",
                hint="reinstall axo-helper",
            )
        found.append(
            Preset(
                key=key,
                hf_id=str(raw["hf_id"]),
                aliases=tuple(str(a) for a in raw.get("aliases") or ()),
                instruct=tuple(str(a) for a in raw.get("instruct") or ()),
                chat_template=bool(raw.get("chat_template", False)),
                config=raw["config"],
                params_b=raw.get("params_b"),
                active_params_b=raw.get("active_params_b"),
            )
        )
    return tuple(found)


@functools.cache
def _index() -> tuple[dict[str, tuple[Preset, bool]], dict[str, tuple[Preset, bool]]]:
    """(exact lower-case names, loose keys) -> (preset, is an instruct variant)."""
    exact: dict[str, tuple[Preset, bool]] = {}
    loose: dict[str, tuple[Preset, bool]] = {}
    for p in _presets():
        for names, variant in (((p.hf_id, p.key, *p.aliases), False), (p.instruct, True)):
            for n in names:
                exact.setdefault(n.lower(), (p, variant))
                loose.setdefault(_loose(n), (p, variant))
    return exact, loose


def find_preset(name: str) -> tuple[Preset, bool] | None:
    """The preset `name` refers to and whether it names an instruct/chat variant."""
    exact, loose = _index()
    lowered = name.strip().lower()
    if lowered in exact:
        return exact[lowered]
    if _loose(name) in loose:
        return loose[_loose(name)]
    # "-Instruct" / "-it" / "-Chat" of a preset: same architecture, a chat tokenizer.
    stripped = _VARIANT_SUFFIX.sub("", name.strip())
    if stripped != name.strip():
        hit = exact.get(stripped.lower()) or loose.get(_loose(stripped))
        if hit:
            return hit[0], True
    return None


def closest_presets(name: str, n: int = 5) -> list[str]:
    """HF ids of the presets nearest to a name that matched nothing (for hints)."""
    _, loose = _index()
    keys = difflib.get_close_matches(_loose(name), list(loose), n=3 * n, cutoff=0.4)
    out: list[str] = []
    for k in keys:
        hf_id = loose[k][0].hf_id
        if hf_id not in out:
            out.append(hf_id)
    if not out:
        out = [
            p.hf_id
            for p in _presets()
            if p.key in ("llama-3.1-8b", "qwen2.5-7b", "mistral-7b-v0.3")
        ]
    return out[:n]


def same_org(name: str, preset: Preset) -> bool:
    """Whether `name` is the preset's own repository in some spelling: no org given, or
    the org of its HF id, an instruct variant or an alias. Another org whose repository
    only shares the name part may hold anything (a quantized copy, another model)."""
    if "/" not in name.strip():
        return True
    org = name.strip().split("/")[0].lower()
    ids = (preset.hf_id, *preset.instruct, *preset.aliases)
    return org in {i.split("/")[0].lower() for i in ids if "/" in i}


def preset_note(preset: Preset, name: str, by_name_only: str | None = None) -> str:
    """What plan and validate say whenever a shipped preset stands for the model."""
    note = f"architecture from the shipped preset {preset.key} ({preset.hf_id})"
    if by_name_only:
        note += f"; {name} matches it by name only and {by_name_only}"
    return note


def preset_spec(
    name: str, preset: Preset, variant: bool, *, by_name_only: str | None = None
) -> ModelSpec:
    """The ModelSpec of a preset, under the HF id the user meant. `by_name_only`: why the
    repository's own config.json was not used when only the name part matched."""
    typed = name.strip()
    if "/" in typed:
        hf_id = typed  # keep the user's repo id (an instruct variant, an old name)
    elif variant:
        hf_id = preset.instruct[0] if preset.instruct else f"{preset.hf_id}-Instruct"
    else:
        hf_id = preset.hf_id
    spec = from_config(
        preset.config,
        name=typed,
        source="preset",
        hf_id=hf_id,
        chat_template=True if variant else preset.chat_template,
    )
    return replace(spec, notes=(preset_note(preset, typed, by_name_only), *spec.notes))


def list_presets() -> list[ModelSpec]:
    """Every shipped model preset, by file name."""
    return [preset_spec(p.hf_id, p, False) for p in _presets()]
