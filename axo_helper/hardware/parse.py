"""`--gpu SPEC` text for one GPU kind: a count prefix, a profile name or a size.

"auto" and "cpu" are the package's (`hardware.resolve`); this module reads the rest.
"""

from __future__ import annotations

import re
from typing import Literal

from axo_helper.errors import GPUSpecError
from axo_helper.hardware.profiles import (
    MAX_GPU_MEMORY_GIB,
    NAME_HINT,
    catalog,
    closest,
    lookup,
)
from axo_helper.specs import GPU

# The largest single machines (HGX/DGX) carry 8 GPUs; 64 leaves room for odd systems
# while still catching a typo such as "1000x h100". Clusters use --nodes.
MAX_GPUS_PER_NODE = 64

_COUNT = re.compile(r"([+-]?\d+)\s*[x×*]\s*(.*)", re.IGNORECASE)
_NO_COUNT = re.compile(r"[x×*]\s*(\S.*)", re.IGNORECASE)
_SIZE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
# "abcGB", "1e3GB", "24,5GB": meant as a size, but the number is not one (a profile
# name ending in GB, such as rtx3060-12gb, has digits next to letters and is not this).
_BAD_SIZE = re.compile(r"([^a-z]*[0-9][0-9.,e+\-_ ]*|[^0-9]*)\s*(gib|gb)", re.IGNORECASE)
_GIB_UNITS = {"gb", "gib", "g"}
_OTHER_UNITS = {"b", "k", "kb", "kib", "m", "mb", "mib", "t", "tb", "tib", "p", "pb", "pib"}
SpecSource = Literal["profile", "size"]


def split_count(text: str) -> tuple[int, str]:
    """(count, the rest) of "2xrtx4090"; (1, text) when there is no count."""
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
    return lookup(text) is not None or _SIZE.fullmatch(text.strip()) is not None


def resolve_one(text: str, *, whole: str) -> tuple[GPU, SpecSource, tuple[str, ...]]:
    """One GPU from a profile name or a size: (gpu, Hardware.source, warnings)."""
    size = _SIZE.fullmatch(text)
    if size and size.group(2).lower() in _GIB_UNITS | _OTHER_UNITS:
        return _size_gpu(float(size.group(1)), size.group(2), whole=whole)
    found = lookup(text)
    if found is not None:
        key, others = found
        profile = catalog().profiles[key]
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
        f"unknown GPU {text.strip()!r}; closest profiles: {', '.join(closest(text))}",
        hint=NAME_HINT,
    )


def _size_gpu(value: float, unit: str, *, whole: str) -> tuple[GPU, SpecSource, tuple[str, ...]]:
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
