"""What to plan against: `--gpu SPEC` -> Hardware, and GPU detection through NVML.

Spec forms (docs/gpus.md):
  auto                    the GPUs NVML reports, planned against their FREE memory
  cpu                     no GPU
  rtx4090, "A100 80GB"    a profile from presets/gpus.yaml, matched loosely
  24GB, 24GiB, 80g        a size: an unnamed modern GPU with that much memory
  2xa100-80gb, 8x h100    a count (per node) before a profile or a size

Everything here is pure except `_load_nvml()`, the one seam through which the real
`pynvml` module (nvidia-ml-py) is reached; tests replace it with tests/fake_nvml.py.
pynvml is imported only for `auto`, so naming a GPU never touches the driver.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from axo_helper.errors import AxoHelperError, GPUSpecError, HardwareError
from axo_helper.resources import load_preset
from axo_helper.specs import GIB, GPU, Hardware

# The largest single machines (HGX/DGX) carry 8 GPUs; 64 leaves room for odd systems
# while still catching a typo such as "1000x h100". Clusters use --nodes.
MAX_GPUS_PER_NODE = 64
# No accelerator has 1 TiB on one device (MI325X: 256 GB, B300: 288 GB); more is a typo
# or a total over several GPUs, which belongs in the count instead.
MAX_GPU_MEMORY_GIB = 1024.0
# The CUDA context of another process alone takes ~0.3-0.5 GiB; below this we stay quiet.
BUSY_THRESHOLD_GIB = 0.5

_NO_GPU_HINT = (
    "check the driver with `nvidia-smi`; to plan without a GPU, name one: "
    "--gpu rtx4090 or --gpu 24GB (`axo-helper gpus --profiles` lists the names)"
)
_NAME_HINT = "name a profile, give a size such as --gpu 24GB, or list the profiles: axo-helper gpus --profiles"


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class _Profile:
    key: str
    gpu: GPU  # the profile as a GPU value (profile=key, no NVML fields)
    aliases: tuple[str, ...]
    notes: str | None
    arch: str | None


@dataclass(frozen=True)
class _Catalog:
    profiles: dict[str, _Profile]  # key -> profile, in file order
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


def _build_profile(entry: Any, position: int) -> _Profile:
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
    )
    return _Profile(
        key=key, gpu=gpu, aliases=tuple(aliases), notes=entry.get("notes"), arch=entry.get("arch")
    )


@functools.cache
def _catalog() -> _Catalog:
    data = load_preset("gpus.yaml")
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), list):
        raise _bad_preset("top level", "needs a `profiles:` list")
    profiles: dict[str, _Profile] = {}
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


def _lookup(name: str) -> tuple[str, tuple[str, ...]] | None:
    """(key, other candidates) for a name, or None. Candidates are non-empty only for
    an ambiguous short name such as "h100", whose key is the default."""
    cat = _catalog()
    forms = _forms(name)
    for form in forms:
        if form in cat.index:
            return cat.index[form], ()
    for form in forms:
        if form in cat.ambiguous:
            keys = cat.ambiguous[form]
            return keys[0], keys[1:]
    return None


def _closest(name: str) -> list[str]:
    """3-5 profile keys nearest to a name that matched none."""
    cat = _catalog()
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
    found = _lookup(name)
    if found is None:
        raise GPUSpecError(
            f"unknown GPU {name.strip()!r}; closest profiles: {', '.join(_closest(name))}",
            hint=_NAME_HINT,
        )
    return _catalog().profiles[found[0]].gpu


def list_profiles() -> list[dict[str, Any]]:
    """Every profile as a plain dict (for `gpus --profiles` and docs), in file order."""
    rows = []
    for p in _catalog().profiles.values():
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


# --------------------------------------------------------------------------- --gpu SPEC
_COUNT = re.compile(r"([+-]?\d+)\s*[x×*]\s*(.*)", re.IGNORECASE)
_NO_COUNT = re.compile(r"[x×*]\s*(\S.*)", re.IGNORECASE)
_SIZE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
# "abcGB", "1e3GB", "24,5GB": meant as a size, but the number is not one (a profile
# name ending in GB, such as rtx3060-12gb, has digits next to letters and is not this).
_BAD_SIZE = re.compile(r"([^a-z]*[0-9][0-9.,e+\-_ ]*|[^0-9]*)\s*(gib|gb)", re.IGNORECASE)
_GIB_UNITS = {"gb", "gib", "g"}
_OTHER_UNITS = {"b", "k", "kb", "kib", "m", "mb", "mib", "t", "tb", "tib", "p", "pb", "pib"}
_SpecSource = Literal["profile", "size"]


def resolve(spec: str, *, nodes: int = 1, allow_cpu: bool = False) -> Hardware:
    """Turn a `--gpu` value into Hardware.

    `allow_cpu`: when `auto` finds no GPU, return CPU hardware (with a warning) instead
    of failing; for commands that can still do something useful without one.
    """
    text = spec.strip()
    if not text:
        raise GPUSpecError(
            "--gpu is empty",
            hint="use --gpu auto, a profile such as rtx4090, or a size such as 24GB",
        )
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise GPUSpecError(f"--nodes must be a whole number of at least 1, not {nodes!r}")
    word = text.lower()
    if word == "auto":
        return _auto(nodes=nodes, allow_cpu=allow_cpu)
    if word == "cpu":
        return Hardware(gpus=(), source="cpu", nodes=nodes)

    count, rest = _split_count(text)
    if rest.lower() in ("auto", "cpu"):
        raise GPUSpecError(
            f"{text!r}: a count cannot go with {rest.lower()!r}",
            hint="auto already counts the GPUs it finds; write e.g. --gpu 2x24GB to plan for two",
        )
    gpu, source, warnings = _resolve_one(rest, whole=text)
    return Hardware(gpus=(gpu,) * count, source=source, nodes=nodes, warnings=warnings)


def _split_count(text: str) -> tuple[int, str]:
    m = _COUNT.fullmatch(text)
    if m is None:
        bare = _NO_COUNT.fullmatch(text)
        if bare is not None and _looks_like_gpu(bare.group(1)):
            raise GPUSpecError(
                f"{text!r} has no GPU count before the 'x'",
                hint=f"write e.g. 2{text} for two GPUs, or drop the 'x' for one",
            )
        return 1, text
    raw, rest = m.group(1), m.group(2).strip()
    count = int(raw)
    if not rest:
        raise GPUSpecError(
            f"{text!r} names no GPU after the count",
            hint=f"write e.g. {count}xrtx4090 or {count}x24GB",
        )
    if not 1 <= count <= MAX_GPUS_PER_NODE:
        raise GPUSpecError(
            f"{text!r}: the GPU count must be between 1 and {MAX_GPUS_PER_NODE} per node, not {count}",
            hint="give the GPUs of one machine; for several machines add --nodes N",
        )
    return count, rest


def _looks_like_gpu(text: str) -> bool:
    return _lookup(text) is not None or _SIZE.fullmatch(text.strip()) is not None


def _resolve_one(text: str, *, whole: str) -> tuple[GPU, _SpecSource, tuple[str, ...]]:
    """One GPU from a profile name or a size: (gpu, Hardware.source, warnings)."""
    size = _SIZE.fullmatch(text)
    if size and size.group(2).lower() in _GIB_UNITS | _OTHER_UNITS:
        return _size_gpu(float(size.group(1)), size.group(2), whole=whole)
    found = _lookup(text)
    if found is not None:
        key, others = found
        profile = _catalog().profiles[key]
        warnings: tuple[str, ...] = ()
        if others:
            warnings = (
                f"{text.strip()!r} could mean several cards; planning for {profile.gpu.name} "
                f"({key}); name {' or '.join(others)} to plan for "
                f"{'that one' if len(others) == 1 else 'one of those'} instead",
            )
        return profile.gpu, "profile", warnings
    bad_size = _BAD_SIZE.fullmatch(text.strip())
    if bad_size is not None:
        number = bad_size.group(1).strip()
        raise GPUSpecError(
            f"{whole!r} is not a size: {number!r} is not a number of GiB"
            if number
            else f"{whole!r} is not a size: no number before {bad_size.group(2)!r}",
            hint="write one GPU's memory as a plain number, e.g. --gpu 24GB or --gpu 24.5GiB, "
            "or name a profile (axo-helper gpus --profiles)",
        )
    if _NUMBER.fullmatch(text):
        raise GPUSpecError(
            f"{whole!r} is neither a GPU profile nor a size: a size needs a unit",
            hint=f"write {text}GB for a GPU with {text} GiB of memory, or a profile such as rtx4090",
        )
    raise GPUSpecError(
        f"unknown GPU {text.strip()!r}; closest profiles: {', '.join(_closest(text))}",
        hint=_NAME_HINT,
    )


def _size_gpu(value: float, unit: str, *, whole: str) -> tuple[GPU, _SpecSource, tuple[str, ...]]:
    if unit.lower() not in _GIB_UNITS:
        raise GPUSpecError(
            f"{whole!r}: sizes are given in GB or GiB (per GPU), not {unit}",
            hint="write e.g. --gpu 24GB, or --gpu 8x80GB for several GPUs",
        )
    if value <= 0:
        raise GPUSpecError(
            f"{whole!r}: GPU memory must be more than 0", hint="write e.g. --gpu 24GB"
        )
    if value > MAX_GPU_MEMORY_GIB:
        raise GPUSpecError(
            f"{whole!r}: no single GPU has more than {MAX_GPU_MEMORY_GIB:g} GiB",
            hint="give the memory of ONE GPU and a count, e.g. --gpu 8x80GB",
        )
    # GB and GiB both mean GiB of usable memory. A card sold as "24 GB" shows ~24 GiB
    # (nvidia-smi: 24564 MiB), so reading "24GB" as 24e9 bytes (22.35 GiB) would
    # understate every card the way users actually name it.
    gpu = GPU(
        name=f"{value:g} GiB GPU",
        memory_gib=value,
        compute_capability=None,
        bf16=True,
        flash_attention_2=True,
        tflops_bf16=None,
        vendor="unknown",
    )
    warning = (
        f"--gpu {whole}: only the memory is known, so an Ampere-or-newer card is assumed "
        "(bf16, FlashAttention-2) and no time estimate is possible; for an older card "
        "name it instead (e.g. --gpu t4, --gpu v100-16gb)"
    )
    return gpu, "size", (warning,)


# --------------------------------------------------------------------------- NVML
def _load_nvml() -> Any:
    """The pynvml module. The one seam tests replace (tests/fake_nvml.py)."""
    try:
        import pynvml
    except ImportError:
        raise HardwareError(
            "cannot look for GPUs: the nvidia-ml-py package is not installed",
            hint="pip install nvidia-ml-py, or name the GPU: --gpu rtx4090 or --gpu 24GB",
        ) from None
    return pynvml


def _text(value: Any) -> str:
    # Older nvidia-ml-py releases return bytes, newer ones str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ calls into the library, which may be missing
        text = ""
    return (text or type(exc).__name__).strip().splitlines()[0]


@dataclass(frozen=True)
class _Device:
    index: int
    name: str
    uuid: str | None
    total: int  # bytes
    free: int
    used_by_processes: int  # bytes held by other processes (driver reserve excluded when known)
    cc: tuple[int, int] | None


def detect() -> Hardware:
    """The GPUs NVML reports, filtered by CUDA_VISIBLE_DEVICES. Raises HardwareError
    (one line, exit 1) when there is no driver, no library or no visible GPU."""
    return _detect()[0]


def _detect() -> tuple[Hardware, dict[int, float]]:
    """detect(), plus the GiB other processes hold on each visible GPU (by NVML index)."""
    nvml = _load_nvml()
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise HardwareError(
            f"no NVIDIA GPU found (NVML: {_reason(exc)})", hint=_NO_GPU_HINT
        ) from None
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        devices = [_read_device(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
    except nvml.NVMLError as exc:
        raise HardwareError(
            f"reading the GPUs through NVML failed: {_reason(exc)}", hint=_NO_GPU_HINT
        ) from None
    finally:
        # A failing shutdown changes nothing: the readings are already taken.
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()
    if not devices:
        raise HardwareError("no NVIDIA GPU found (NVML reports 0 devices)", hint=_NO_GPU_HINT)

    visible, warnings = _visible(devices, os.environ.get("CUDA_VISIBLE_DEVICES"))
    gpus = tuple(_device_gpu(d, driver) for d in visible)
    held = {d.index: d.used_by_processes / GIB for d in visible}
    return Hardware(gpus=gpus, source="nvml", warnings=tuple(warnings)), held


def _read_device(nvml: Any, index: int) -> _Device:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    mem = nvml.nvmlDeviceGetMemoryInfo(handle)
    total, free = int(mem.total), int(mem.free)
    used = total - free
    # Drivers since R510 count a reserve of their own in v1 `used`; v2 reports it apart,
    # so the "other processes hold memory" warning does not fire on an idle GPU.
    try:
        mem2 = nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2)
        used = int(mem2.used)
    except (nvml.NVMLError, AttributeError, TypeError):
        pass
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        cc: tuple[int, int] | None = (int(major), int(minor))
    except nvml.NVMLError:
        cc = None
    try:
        uuid: str | None = _text(nvml.nvmlDeviceGetUUID(handle))
    except nvml.NVMLError:
        uuid = None
    return _Device(
        index=index, name=name, uuid=uuid, total=total, free=free, used_by_processes=used, cc=cc
    )


def _visible(devices: list[_Device], env: str | None) -> tuple[list[_Device], list[str]]:
    """Apply CUDA_VISIBLE_DEVICES the way the CUDA runtime does: a comma list of
    indices or GPU-UUIDs (a unique prefix is enough), in the order given; the list
    ends at the first entry that names no GPU; an empty value hides every GPU."""
    if env is None:
        return devices, []
    warnings: list[str] = []
    chosen: list[_Device] = []
    for raw in env.split(","):
        entry = raw.strip()
        found: _Device | None = None
        if re.fullmatch(r"\d+", entry):
            found = devices[int(entry)] if int(entry) < len(devices) else None
        elif entry.lower().startswith("gpu-"):
            hits = [d for d in devices if d.uuid and d.uuid.lower().startswith(entry.lower())]
            found = hits[0] if len(hits) == 1 else None
        elif entry.lower().startswith("mig-"):
            raise HardwareError(
                f"CUDA_VISIBLE_DEVICES names a MIG slice ({entry}); NVML reports the whole GPU, not the slice",
                hint="plan for the slice's memory instead, e.g. --gpu 10GB for a 1g.10gb slice",
            )
        if found is None:
            if entry:
                warnings.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} names no GPU; CUDA ignores it and every entry after it"
                )
            break
        if found not in chosen:
            chosen.append(found)
    if not chosen:
        raise HardwareError(
            f"no NVIDIA GPU visible: CUDA_VISIBLE_DEVICES={env!r} hides all {len(devices)} GPU(s)",
            hint="unset CUDA_VISIBLE_DEVICES or list the GPUs to use, e.g. CUDA_VISIBLE_DEVICES=0",
        )
    names = {d.name for d in devices}
    numeric = any(re.fullmatch(r"\s*\d+\s*", e) for e in env.split(","))
    if numeric and len(names) > 1 and os.environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        # CUDA numbers GPUs fastest-first by default, NVML by PCI bus: on a mixed machine
        # the same index can be two different cards.
        warnings.append(
            "this machine has different GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID, so "
            "CUDA_VISIBLE_DEVICES indices may not match nvidia-smi's; set CUDA_DEVICE_ORDER=PCI_BUS_ID"
        )
    return chosen, warnings


def _device_gpu(d: _Device, driver: str) -> GPU:
    total_gib = d.total / GIB
    profile = _profile_for_device(d.name, total_gib)
    if profile is not None:
        bf16, fa2, tflops = profile.gpu.bf16, profile.gpu.flash_attention_2, profile.gpu.tflops_bf16
    else:
        # Unknown card: bf16 and FlashAttention-2 both need Ampere (cc 8.0) or newer.
        modern = d.cc is not None and d.cc >= (8, 0)
        bf16, fa2, tflops = modern, modern, None
    return GPU(
        name=d.name,
        memory_gib=total_gib,
        compute_capability=d.cc,
        bf16=bf16,
        flash_attention_2=fa2,
        tflops_bf16=tflops,
        vendor="nvidia",
        free_gib=d.free / GIB,
        index=d.index,
        driver=driver,
        profile=profile.key if profile is not None else None,
        uuid=d.uuid,
    )


def _profile_for_device(name: str, total_gib: float) -> _Profile | None:
    found = _lookup(name)
    if found is None:
        return None
    cat = _catalog()
    key, others = found
    # NVML names some variants alike ("NVIDIA GeForce RTX 3080" is the 10 GB and the 12 GB
    # card): the reported memory decides.
    candidates = [cat.profiles[k] for k in (key, *others)]
    return min(candidates, key=lambda p: abs(p.gpu.memory_gib - total_gib))


def _auto(*, nodes: int, allow_cpu: bool) -> Hardware:
    try:
        found, held_by_index = _detect()
    except HardwareError as exc:
        if not allow_cpu:
            raise
        return Hardware(
            gpus=(), source="cpu", nodes=nodes, warnings=(f"{exc.message}; planning for CPU",)
        )
    warnings = list(found.warnings)
    for g in found.gpus:
        held = held_by_index.get(g.index if g.index is not None else -1, 0.0)
        if held > BUSY_THRESHOLD_GIB:
            warnings.append(
                f"GPU {g.index} ({g.name}): other processes hold {held:.1f} GiB; planning against "
                f"the {g.free_gib or 0.0:.1f} GiB free (stop them, or name the GPU with --gpu to plan for all of it)"
            )
    planned = Hardware(gpus=found.gpus, source="nvml", nodes=nodes, use_free_memory=True)
    if len({(g.name, round(g.memory_gib)) for g in found.gpus}) > 1:
        smallest = planned.gpu
        assert smallest is not None  # detect() never returns an empty list
        warnings.append(
            f"the visible GPUs differ; every rank is planned against the smallest budget, "
            f"GPU {smallest.index} ({smallest.name}, {planned.budget_gib:.1f} GiB free); "
            "set CUDA_VISIBLE_DEVICES to use only identical GPUs"
        )
    return replace(planned, warnings=tuple(warnings))
