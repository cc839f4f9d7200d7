"""GPU and Hardware: what to plan against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GPU:
    """One accelerator, detected (NVML) or from a profile (presets/gpus.yaml)."""

    name: str  # "NVIDIA GeForce RTX 4090", or the profile's display name
    memory_gib: float  # total memory, GiB (2**30 bytes)
    compute_capability: tuple[int, int] | None = None  # (8, 9); None for AMD / unknown
    bf16: bool = True
    flash_attention_2: bool = True
    tflops_bf16: float | None = None  # dense bf16 (fp16 where no bf16) tensor TFLOP/s
    vendor: Literal["nvidia", "amd", "cpu", "unknown"] = "nvidia"
    free_gib: float | None = None  # NVML only
    index: int | None = None  # NVML only
    driver: str | None = None  # NVML only
    profile: str | None = None  # key in presets/gpus.yaml when matched
    uuid: str | None = None  # NVML only: "GPU-…", what CUDA_VISIBLE_DEVICES may name
    # GPU-to-GPU bandwidth per direction, GB/s (NVLink/Infinity Fabric); None: PCIe, whose
    # figure is the policy's (speed.pcie_gbps). Used only for time estimates.
    link_gbps: float | None = None

    # Capabilities derived from vendor and compute capability, named once for the planner,
    # render and validate (Axolotl's own capability dict uses the same thresholds).
    @property
    def cuda(self) -> bool:
        """An NVIDIA GPU: CUDA-only kernels (Triton LoRA kernels, Liger) can run."""
        return self.vendor == "nvidia"

    @property
    def tf32(self) -> bool:
        """TF32 matmuls: NVIDIA Ampere (compute capability 8.0) and newer."""
        cc = self.compute_capability
        return self.cuda and cc is not None and cc >= (8, 0)

    @property
    def fp8(self) -> bool:
        """FP8 tensor cores: compute capability 9.0 (Hopper) and newer."""
        cc = self.compute_capability
        return cc is not None and cc >= (9, 0)

    @property
    def sm(self) -> str | None:
        """The CUDA architecture name, "sm_89"; None without a compute capability."""
        cc = self.compute_capability
        return f"sm_{cc[0]}{cc[1]}" if cc else None


@dataclass(frozen=True)
class Hardware:
    """What to plan against: N identical GPUs per node (or none: CPU)."""

    gpus: tuple[GPU, ...]
    source: Literal["nvml", "profile", "size", "cpu"]
    nodes: int = 1
    use_free_memory: bool = False  # --gpu auto plans against free memory
    warnings: tuple[str, ...] = ()

    @property
    def num_gpus(self) -> int:
        """GPUs per node."""
        return len(self.gpus)

    @property
    def world_size(self) -> int:
        return max(1, self.num_gpus) * self.nodes

    @property
    def gpu(self) -> GPU | None:
        """The GPU every rank plans against (the smallest one when they differ)."""
        if not self.gpus:
            return None
        return min(self.gpus, key=lambda g: self.memory_of(g))

    def memory_of(self, g: GPU) -> float:
        if self.use_free_memory and g.free_gib is not None:
            return g.free_gib
        return g.memory_gib

    @property
    def budget_gib(self) -> float:
        """Raw memory per GPU available to training, before the policy's headroom."""
        g = self.gpu
        return self.memory_of(g) if g is not None else 0.0

    @property
    def is_cpu(self) -> bool:
        return not self.gpus

    def describe(self) -> str:
        if not self.gpus:
            return "CPU (no GPU)"
        g = self.gpus[0]
        count = f"{self.num_gpus}x " if self.num_gpus > 1 else ""
        nodes = f" x {self.nodes} nodes" if self.nodes > 1 else ""
        return f"{count}{g.name} ({g.memory_gib:.1f} GiB){nodes}"
