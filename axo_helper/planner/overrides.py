"""The overrides of plan() (--method, --seq-len, --micro-batch, --epochs, --distributed),
checked before any estimate: a UsageError for one that cannot apply."""

from __future__ import annotations

from axo_helper.errors import UsageError
from axo_helper.planner import freeze
from axo_helper.planner.policy import Policy
from axo_helper.specs import DISTRIBUTED, METHODS, Hardware, Method, ModelSpec


def check_overrides(
    hardware: Hardware,
    model: ModelSpec,
    policy: Policy,
    method: Method | None,
    seq_len: int | None,
    micro_batch: int | None,
    epochs: int | None,
    distributed: str | None,
) -> None:
    """UsageError for an override that cannot apply, before any estimate."""
    if method is not None and method not in METHODS:
        raise UsageError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    cpu_ok = method in policy.cpu_methods or freeze.runs_on_cpu(method, policy.cpu_methods)
    if method is not None and hardware.is_cpu and not cpu_ok:
        raise UsageError(
            f"--method {method} needs a CUDA GPU (bitsandbytes 4-bit quantization)",
            hint=f"on CPU use --method {' or '.join(policy.cpu_methods)}",
        )
    for name, value in (
        ("--seq-len", seq_len),
        ("--micro-batch", micro_batch),
        ("--epochs", epochs),
    ):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise UsageError(f"{name} must be at least 1, not {value}")
    if seq_len is not None and seq_len > model.max_position_embeddings:
        raise UsageError(
            f"--seq-len {seq_len} is longer than {model.name}'s {model.max_position_embeddings} "
            "positions",
            hint=f"use --seq-len {model.max_position_embeddings} or less",
        )
    if distributed is not None:
        if distributed not in DISTRIBUTED or distributed == "none":
            raise UsageError(
                f"unknown --distributed {distributed!r}",
                hint="use one of ddp, zero1, zero2, zero3, fsdp",
            )
        world = 1 if hardware.is_cpu else hardware.world_size
        if world < 2:
            raise UsageError(
                f"--distributed {distributed} needs several GPUs; this plan has one",
                hint="give a count with --gpu (e.g. --gpu 2xa100-80gb) or --nodes, or drop --distributed",
            )
