"""What the training process runs on: rank, world size, device name, peak memory.

torch is imported inside the functions: the recorder's tests inject their own memory
reading and need no GPU.
"""

from __future__ import annotations

import os
import platform
import resource
import sys

from axo_helper.specs import GIB


def rank_zero() -> bool:
    """True on the global rank 0 (or when not distributed): only it writes files."""
    return os.environ.get("RANK", "0") in ("", "0")


def world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def peak_memory() -> tuple[float, str]:
    """(GiB, what was measured): the caching allocator's high-water mark on CUDA
    (what an OOM is about), the process's peak resident set on CPU."""
    if cuda():
        import torch

        return torch.cuda.max_memory_reserved() / GIB, "cuda_max_memory_reserved"
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return rss * scale / GIB, "process_max_rss"


def device_name() -> str:
    if cuda():
        import torch

        return str(torch.cuda.get_device_name(torch.cuda.current_device()))
    return f"cpu ({platform.machine() or 'unknown'})"
