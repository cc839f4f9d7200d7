"""What a TrainSetup's precision and distribution mean for every component: bytes per
element, whether DeepSpeed runs, and over how many ranks ZeRO/FSDP split things."""

from __future__ import annotations

from axo_helper.memory.constants import FP32_BYTES, HALF_BYTES
from axo_helper.specs import TrainSetup


def element_bytes(setup: TrainSetup) -> int:
    """Bytes of a weight / activation element in the run's precision."""
    return FP32_BYTES if setup.precision == "fp32" else HALF_BYTES


def is_deepspeed(setup: TrainSetup) -> bool:
    """Whether DeepSpeed ZeRO (any stage) owns the optimizer."""
    return setup.distributed in ("zero1", "zero2", "zero3")


def shards_params(setup: TrainSetup) -> bool:
    """Parameters themselves are split across ranks (ZeRO-3, FSDP full shard)."""
    return setup.distributed in ("zero3", "fsdp")


def ranks(setup: TrainSetup) -> int:
    """The processes the setup splits over (1 without a distributed strategy)."""
    return max(1, setup.num_gpus) if setup.distributed != "none" else 1
