"""`plan --longest`: the longest sequence that fits, toolbox option by toolbox option.

For the GPU, model and method at hand (micro batch 1), each row adds one of Axolotl's
memory features to the one before, and the planner's own fit (memory model, budget,
host memory for offload) says the longest sequence_len, in steps of the policy's
multiple, that still fits. Like Unsloth's context-length table, for the user's case.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from axo_helper.errors import PlanError
from axo_helper.planner.decide import plan
from axo_helper.planner.policy import Policy, Variant
from axo_helper.specs import Hardware, Method, ModelSpec


@dataclass(frozen=True)
class Longest:
    option: str
    sequence_len: int  # 0: not even the shortest fits
    total_gib: float | None  # at that length
    tokens_per_second: float | None  # predicted, at that length

    def as_dict(self) -> dict[str, object]:
        return {
            "option": self.option,
            "sequence_len": self.sequence_len,
            "total_gib": round(self.total_gib, 2) if self.total_gib is not None else None,
            "tokens_per_second": (
                round(self.tokens_per_second) if self.tokens_per_second is not None else None
            ),
        }


def _options(policy: Policy, hardware: Hardware, fused: bool) -> list[tuple[str, Variant]]:
    rows = [
        ("16-bit states, no checkpointing", Variant(False, "default", False)),
        ("+ gradient checkpointing", Variant(False, "default", True)),
    ]
    if fused:
        rows.append(("+ fused cross-entropy (Liger)", Variant(False, "default", True, fused_ce=True)))
    if hardware.is_cpu:
        return rows
    rows.append(("+ 8-bit optimizer states", Variant(False, "eight_bit", True, fused_ce=fused)))
    acts = Variant(False, "eight_bit", True, fused_ce=fused, activation_offloading=True)
    rows.append(("+ activation offloading", acts))
    if hardware.world_size > 1:
        # FSDP replaces Axolotl's gradient checkpointing, which activation offloading needs
        sharded = replace(acts, sharded=True, activation_offloading=policy.sharded != "fsdp")
        rows.append((f"+ {policy.sharded} across {hardware.world_size} GPUs", sharded))
        rows.append(("+ CPU offload", replace(sharded, optimizer="default", offload=True)))
    return rows


def longest(
    hardware: Hardware,
    model: ModelSpec,
    policy: Policy,
    method: Method,
    *,
    installed: frozenset[str] = frozenset(),
    host_memory_gib: float | None = None,
) -> list[Longest]:
    """One row per toolbox option, each with every option above it."""
    gpu = hardware.gpu
    fused = (
        gpu is not None
        and gpu.cuda
        and policy.fused_ce.supports(model.model_type)
        and policy.fused_ce.package in installed
    )
    out: list[Longest] = []
    for label, variant in _options(policy, hardware, fused):
        only = replace(
            policy,
            ladder=(replace(variant, fused_ce=False),),
            fused_ce=replace(policy.fused_ce, enabled=variant.fused_ce),
            seq_len_shrink_to_fit=False,
            partial_sharding=None,  # the row names policy.sharded
        )
        out.append(_longest_for(hardware, model, only, method, label, installed, host_memory_gib))
    return out


def _longest_for(
    hardware: Hardware,
    model: ModelSpec,
    policy: Policy,
    method: Method,
    label: str,
    installed: frozenset[str],
    host_memory_gib: float | None,
) -> Longest:
    step = policy.seq_len_multiple
    lo, hi = 0, max(1, model.max_position_embeddings // step)  # in multiples of `step`
    best = None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            p = plan(
                hardware,
                model,
                None,
                policy,
                method=method,
                seq_len=mid * step,
                micro_batch=1,
                installed=installed,
                host_memory_gib=host_memory_gib,
            )
        except PlanError:
            hi = mid - 1
            continue
        lo, best = mid, p
    if best is None:
        return Longest(label, 0, None, None)
    return Longest(label, lo * step, best.memory.total_gib, best.tokens_per_second)
