"""GPU profiles: presets/gpus.yaml read and checked once, and names matched to them.

A name matches loosely: case, separators, vendor words ("NVIDIA", "GeForce") and the
spelling of the memory unit ("80g", "80 GiB") do not matter, and a leading "RTX" is
optional. A short name that several cards share ("h100") picks the file's default.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import Any

from axo_helper.errors import AxoHelperError, GPUSpecError
from axo_helper.resources import load_preset
from axo_helper.specs import GPU

# No accelerator has 1 TiB on one device (MI325X: 256 GB, B300: 288 GB); more is a typo
# or a total over several GPUs, which belongs in the count instead.
MAX_GPU_MEMORY_GIB = 1024.0

# The hint of every "unknown GPU" error, here and in parse.py.
NAME_HINT = "name a profile, give a size such as --gpu 24GB, or list the profiles: axo-helper gpus --profiles"


@dataclass(frozen=True)
class Profile:
    key: str
    gpu: GPU  # the profile as a GPU value (profile=key, no NVML fields)
    aliases: tuple[str, ...]
    notes: str | None
    arch: str | None


@dataclass(frozen=True)
class _Catalog:
    profiles: dict[str, Profile]  # key -> profile, in file order
    index: dict[str, str]  # normalized spelling -> key
    ambiguous: dict[str, tuple[str, ...]]  # normalized short name -> keys, default first


# Words that vendors prepend inconsistently ("NVIDIA GeForce RTX 4090", "Tesla T4",
# "AMD Instinct MI300X"); users leave them out, so matching ignores them.
_VENDOR_WORDS = re.compile(r"\b(nvidia|geforce|tesla|amd|instinct)\b")
# "80g" / "80 GiB" / "80GB" inside a name all mean the same card.
_NAME_UNIT = re.compile(r"(\d)\s*(gib|gb|g)\b")


def _normalize(name: str) -> str:
    text = _NAME_UNIT.sub(r"\1gb", name.lower())
    text = _VENDOR_WORDS.sub(" ", text)
    return re.sub(r"[^a-z0-9]", "", text)


def _forms(name: str) -> list[str]:
    """Normalized spellings of a name, the exact one first.

    "RTX" is optional for users ("4090", "a6000") but part of NVML names ("NVIDIA
    RTX A6000"), so each name is also indexed without a leading "rtx".
    """
    n = _normalize(name)
    forms = [n] if n else []
    if n.startswith("rtx") and len(n) > 3:
        forms.append(n[3:])
    return forms


def _bad_preset(where: str, problem: str) -> AxoHelperError:
    # A broken shipped file is a packaging bug, but it still gets a message, not a traceback.
    return AxoHelperError(
        f"presets/gpus.yaml: {where}: {problem}",
        hint="reinstall axo-helper; if you edited the file, fix that entry",
    )


def _parse_cc(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    m = re.fullmatch(r"(\d{1,2})\.(\d)", str(value))
    if not m:
        raise _bad_preset(where, f'compute_capability must look like "8.9", not {value!r}')
    return int(m.group(1)), int(m.group(2))


def _build_profile(entry: Any, position: int) -> Profile:
    where = f"profile #{position + 1}"
    if not isinstance(entry, dict):
        raise _bad_preset(where, "must be a mapping")
    key = entry.get("key")
    if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", key):
        raise _bad_preset(where, f"key must be lower-case letters, digits and hyphens, not {key!r}")
    where = f"profile {key!r}"
    for field, kind in (
        ("name", str),
        ("bf16", bool),
        ("flash_attention_2", bool),
        ("vendor", str),
    ):
        if not isinstance(entry.get(field), kind):
            raise _bad_preset(where, f"{field} must be a {kind.__name__}")
    memory = entry.get("memory_gib")
    if (
        isinstance(memory, bool)
        or not isinstance(memory, (int, float))
        or not 0 < memory <= MAX_GPU_MEMORY_GIB
    ):
        raise _bad_preset(where, f"memory_gib must be a number in (0, {MAX_GPU_MEMORY_GIB:g}]")
    tflops = entry.get("tflops_bf16")
    if tflops is not None and (
        isinstance(tflops, bool) or not isinstance(tflops, (int, float)) or tflops <= 0
    ):
        raise _bad_preset(where, "tflops_bf16 must be a positive number or null")
    link = entry.get("link_gbps")
    if link is not None and (
        isinstance(link, bool) or not isinstance(link, (int, float)) or link <= 0
    ):
        raise _bad_preset(where, "link_gbps must be a positive number or null")
    vendor = entry["vendor"]
    if vendor not in ("nvidia", "amd"):
        raise _bad_preset(where, f"vendor must be nvidia or amd, not {vendor!r}")
    aliases = entry.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise _bad_preset(where, "aliases must be a list of strings (quote numbers)")
    gpu = GPU(
        name=entry["name"],
        memory_gib=float(memory),
        compute_capability=_parse_cc(entry.get("compute_capability"), where),
        bf16=entry["bf16"],
        flash_attention_2=entry["flash_attention_2"],
        tflops_bf16=float(tflops) if tflops is not None else None,
        vendor=vendor,
        profile=key,
        link_gbps=float(link) if link is not None else None,
    )
    return Profile(
        key=key, gpu=gpu, aliases=tuple(aliases), notes=entry.get("notes"), arch=entry.get("arch")
    )


@functools.cache
def catalog() -> _Catalog:
    """The profiles, read and checked once; a broken file is an AxoHelperError."""
    data = load_preset("gpus.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise _bad_preset("top level", "needs a `profiles:` list")
    profiles: dict[str, Profile] = {}
    index: dict[str, str] = {}
    for position, entry in enumerate(data["profiles"]):
        p = _build_profile(entry, position)
        if p.key in profiles:
            raise _bad_preset(f"profile {p.key!r}", "key is used twice")
        profiles[p.key] = p
        for spelling in (p.key, p.gpu.name, *p.aliases):
            for form in _forms(spelling):
                owner = index.setdefault(form, p.key)
                if owner != p.key:
                    raise _bad_preset(f"profile {p.key!r}", f"{spelling!r} also names {owner!r}")
    ambiguous: dict[str, tuple[str, ...]] = {}
    for short, keys in (data.get("ambiguous") or {}).items():
        if not isinstance(keys, list) or not keys or any(k not in profiles for k in keys):
            raise _bad_preset(f"ambiguous {short!r}", "must list known profile keys")
        for form in _forms(str(short)):
            if form in index:
                raise _bad_preset(f"ambiguous {short!r}", f"is already the name of {index[form]!r}")
            ambiguous[form] = tuple(keys)
    return _Catalog(profiles=profiles, index=index, ambiguous=ambiguous)


def lookup(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(key, other candidates) for a name, or None. Candidates are non-empty only for
    an ambiguous short name such as "h100", whose key is the default."""
    cat = catalog()
    forms = _forms(name)
    for form in forms:
        if form in cat.index:
            return cat.index[form], ()
    for form in forms:
        if form in cat.ambiguous:
            keys = cat.ambiguous[form]
            return keys[0], keys[1:]
    return None


def closest(name: str) -> list[str]:
    """3-5 profile keys nearest to a name that matched none."""
    cat = catalog()
    target = _normalize(name)
    spellings = {**cat.index, **{f: ks[0] for f, ks in cat.ambiguous.items()}}
    ranked = difflib.get_close_matches(target, list(spellings), n=len(spellings), cutoff=0.0)
    good: list[str] = []
    rest: list[str] = []
    for form in ranked:
        key = spellings[form]
        bucket = good if difflib.SequenceMatcher(None, target, form).ratio() >= 0.6 else rest
        if key not in good and key not in rest:
            bucket.append(key)
    # Close matches first (up to 5); when there are fewer than 3, pad with the next nearest.
    return (good + rest)[: max(3, min(5, len(good)))]


def match_profile(name: str) -> GPU:
    """The profile a name means, matched loosely ("RTX 4090", "a100-80gb", "h100")."""
    found = lookup(name)
    if found is None:
        raise GPUSpecError(
            f"unknown GPU {name.strip()!r}; closest profiles: {', '.join(closest(name))}",
            hint=NAME_HINT,
        )
    return catalog().profiles[found[0]].gpu


def list_profiles() -> list[dict[str, Any]]:
    """Every profile as a plain dict (for `gpus --profiles` and docs), in file order."""
    rows = []
    for p in catalog().profiles.values():
        g = p.gpu
        rows.append(
            {
                "key": p.key,
                "name": g.name,
                "aliases": list(p.aliases),
                "memory_gib": g.memory_gib,
                "compute_capability": _cc_text(g.compute_capability),
                "bf16": g.bf16,
                "flash_attention_2": g.flash_attention_2,
                "tflops_bf16": g.tflops_bf16,
                "vendor": g.vendor,
                "arch": p.arch,
                "notes": p.notes,
            }
        )
    return rows


def _cc_text(cc: tuple[int, int] | None) -> str | None:
    return f"{cc[0]}.{cc[1]}" if cc is not None else None


def gpu_as_dict(g: GPU) -> dict[str, Any]:
    """One GPU as JSON-ready data (`gpus --json`)."""
    return {
        "index": g.index,
        "name": g.name,
        "uuid": g.uuid,
        "memory_total_gib": round(g.memory_gib, 2),
        "memory_free_gib": round(g.free_gib, 2) if g.free_gib is not None else None,
        "compute_capability": _cc_text(g.compute_capability),
        "driver": g.driver,
        "profile": g.profile,
        "bf16": g.bf16,
        "flash_attention_2": g.flash_attention_2,
        "tflops_bf16": g.tflops_bf16,
        "vendor": g.vendor,
    }
