"""What to plan against: `--gpu SPEC` -> Hardware, and GPU detection through NVML.

Spec forms (docs/gpus.md):
  auto                    the GPUs NVML reports, planned against their FREE memory
  cpu                     no GPU
  rtx4090, "A100 80GB"    a profile from presets/gpus.yaml, matched loosely
  24GB, 24GiB, 80g        a size: an unnamed modern GPU with that much memory
  2xa100-80gb, 8x h100    a count (per node) before a profile or a size

Package map:
  profiles.py   presets/gpus.yaml profiles, loose name matching, GPUs as plain data
  parse.py      a count, profile name or size -> one GPU kind (with its warnings)
  nvml.py       detection through NVML, CUDA_VISIBLE_DEVICES, `auto`'s warnings

Everything is pure except `_load_nvml()`, the one seam through which the real `pynvml`
module is reached; tests replace it on this package with tests/fake_nvml.py.
"""

from __future__ import annotations

from axo_helper.errors import GPUSpecError
from axo_helper.hardware.nvml import BUSY_THRESHOLD_GIB, _load_nvml, auto, detect
from axo_helper.hardware.parse import MAX_GPUS_PER_NODE, resolve_one, split_count
from axo_helper.hardware.profiles import (
    MAX_GPU_MEMORY_GIB,
    gpu_as_dict,
    list_profiles,
    match_profile,
)
from axo_helper.specs import Hardware

__all__ = [
    "BUSY_THRESHOLD_GIB",
    "MAX_GPUS_PER_NODE",
    "MAX_GPU_MEMORY_GIB",
    "_load_nvml",
    "detect",
    "gpu_as_dict",
    "list_profiles",
    "match_profile",
    "resolve",
]


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
        return auto(nodes=nodes, allow_cpu=allow_cpu)
    if word == "cpu":
        return Hardware(gpus=(), source="cpu", nodes=nodes)

    count, rest = split_count(text)
    if rest.lower() in ("auto", "cpu"):
        raise GPUSpecError(
            f"{text!r}: a count cannot go with {rest.lower()!r}",
            hint="auto already counts the GPUs it finds; write e.g. --gpu 2x24GB to plan for two",
        )
    gpu, source, warnings = resolve_one(rest, whole=text)
    return Hardware(gpus=(gpu,) * count, source=source, nodes=nodes, warnings=warnings)
