"""What the device decides before any search: the memory budget, precision and attention."""

from __future__ import annotations

from dataclasses import dataclass, field

from axo_helper.errors import PlanError
from axo_helper.planner.policy import Policy
from axo_helper.specs import Attention, Hardware, Precision


@dataclass(frozen=True)
class DeviceFacts:
    budget: float  # GiB per GPU (or for the CPU process) the plan may use
    budget_why: str
    precision: Precision
    attn: Attention
    reasons: dict[str, str] = field(default_factory=dict)  # precision, attention (in order)
    warnings: tuple[str, ...] = ()


def device_facts(hardware: Hardware, policy: Policy, cpu_memory_gib: float | None) -> DeviceFacts:
    """Budget, precision and attention for `hardware`; PlanError when no memory is left."""
    facts = (
        _cpu_facts(policy, cpu_memory_gib) if hardware.gpu is None else _gpu_facts(hardware, policy)
    )
    if facts.precision in ("bf16", "fp16"):
        facts.reasons[facts.precision] = facts.reasons["precision"]  # the key render comments
    if facts.budget <= 0:
        hint = "free the GPU (see nvidia-smi) or pass --gpu with its profile"
        if hardware.source in ("size", "profile"):
            hint = (
                f"the policy keeps max({policy.headroom_fraction:.0%}, "
                f"{policy.headroom_min_gib:g} GiB) of each GPU as headroom; plan for a GPU with "
                "more memory"
            )
        raise PlanError(
            f"no memory left to plan with: {facts.budget_why} leaves {facts.budget:.1f} GiB",
            hint=hint,
        )
    return facts


def _cpu_facts(policy: Policy, cpu_memory_gib: float | None) -> DeviceFacts:
    host = (
        cpu_memory_gib if cpu_memory_gib and cpu_memory_gib > 0 else policy.cpu_assumed_memory_gib
    )
    return DeviceFacts(
        budget=host * policy.cpu_memory_fraction,
        budget_why=f"{policy.cpu_memory_fraction:.0%} of {host:.1f} GiB host memory",
        precision="fp32",
        attn="sdpa",
        reasons={
            "precision": "fp32: CPU training (bf16/fp16 mixed precision needs a GPU)",
            "attn_implementation": "sdpa: PyTorch's built-in attention, works on CPU",
        },
        warnings=(
            "CPU training is for the demo and tiny models: a 1B model takes hours per 1,000 steps",
        ),
    )


def _gpu_facts(hardware: Hardware, policy: Policy) -> DeviceFacts:
    gpu = hardware.gpu
    assert gpu is not None
    raw = hardware.budget_gib
    budget = policy.budget(raw)
    cc = gpu.compute_capability
    cc_text = f"compute capability {cc[0]}.{cc[1]}" if cc else gpu.name
    reasons: dict[str, str] = {}
    precision: Precision
    attn: Attention
    if gpu.bf16:
        precision = "bf16"
        reasons["precision"] = (
            f"bf16: {cc_text} supports bfloat16 (fp16's range without loss scaling)"
        )
    else:
        precision = "fp16"
        reasons["precision"] = f"fp16: {cc_text} has no bfloat16 (bf16 needs >= 8.0)"
    if gpu.flash_attention_2:
        attn = "flash_attention_2"
        reasons["attn_implementation"] = f"flash_attention_2: supported on {cc_text}"
    else:
        attn = "sdpa"
        reasons["attn_implementation"] = (
            f"sdpa: FlashAttention-2 needs compute capability >= 8.0; {cc_text} gets PyTorch's "
            "memory-efficient attention"
        )
    warnings: tuple[str, ...] = ()
    if hardware.use_free_memory and not hardware.warnings:
        held = max(g.memory_gib - hardware.memory_of(g) for g in hardware.gpus)
        if held > 0.5:
            warnings = (
                f"other processes hold {held:.1f} GiB of GPU memory: planning against the free "
                f"{raw:.1f} GiB",
            )
    return DeviceFacts(
        budget=budget,
        budget_why=f"{raw:.1f} GiB less {raw - budget:.1f} GiB headroom",
        precision=precision,
        attn=attn,
        reasons=reasons,
        warnings=warnings,
    )
