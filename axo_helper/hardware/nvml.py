"""GPU detection through NVML (nvidia-ml-py): `detect()` and `--gpu auto`.

The driver is reached only through `_load_nvml()`, looked up on the package
(`axo_helper.hardware._load_nvml`) so that tests can replace it with tests/fake_nvml.py.
pynvml is imported only here and only when called: naming a GPU never touches the driver.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from axo_helper.errors import HardwareError
from axo_helper.hardware.profiles import Profile, catalog, lookup
from axo_helper.specs import GIB, GPU, Hardware

# The CUDA context of another process alone takes ~0.3-0.5 GiB; below this we stay quiet.
BUSY_THRESHOLD_GIB = 0.5

_NO_GPU_HINT = (
    "check the driver with `nvidia-smi`; to plan without a GPU, name one: "
    "--gpu rtx4090 or --gpu 24GB (`axo-helper gpus --profiles` lists the names)"
)


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
    # Through the package, not this module: `hardware._load_nvml` is the seam tests patch.
    from axo_helper import hardware

    nvml = hardware._load_nvml()
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
        link_gbps=profile.gpu.link_gbps if profile is not None else None,
    )


def _profile_for_device(name: str, total_gib: float) -> Profile | None:
    found = lookup(name)
    if found is None:
        return None
    cat = catalog()
    key, others = found
    # NVML names some variants alike ("NVIDIA GeForce RTX 3080" is the 10 GB and the 12 GB
    # card): the reported memory decides.
    candidates = [cat.profiles[k] for k in (key, *others)]
    return min(candidates, key=lambda p: abs(p.gpu.memory_gib - total_gib))


def auto(*, nodes: int, allow_cpu: bool) -> Hardware:
    """`--gpu auto`: the visible GPUs, planned against their free memory, with warnings
    about busy or mixed GPUs; CPU hardware instead of an error when `allow_cpu`."""
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
