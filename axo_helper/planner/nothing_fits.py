"""The refusal: a PlanError naming the lightest setup tried and the smallest changes that fit."""

from __future__ import annotations

import math

from axo_helper.errors import PlanError
from axo_helper.planner.lengths import describe, row_fate
from axo_helper.planner.policy import Variant
from axo_helper.planner.search import Search, gib, shrinking
from axo_helper.specs import DataSpec, Method


def nothing_fits(
    search: Search,
    seqs: list[int],
    methods: list[Method],
    micro_batch: int | None,
    explicit_seq: bool,
    forced_method: Method | None,
    *,
    data: DataSpec | None = None,
) -> PlanError:
    """A PlanError that names the smallest change that would fit.

    `data`: when the search stopped at the shortest length that keeps the policy's share
    of rows, the shorter --seq-len that would fit is named with the rows it drops.
    """
    method = methods[-1]  # the lightest in preference order (qlora unless forced/CPU)
    seq = seqs[-1]
    v = search.lightest_variant()
    mb = micro_batch or 1
    lightest = search.estimate(search.setup(method, seq, False, v, mb))
    need = lightest.total_gib
    desc = f"{method} at sequence_len {seq}, micro batch {mb}, {search.label(v)}"
    if need <= search.budget and not search.host_fits(lightest):
        return _host_refusal(search, desc, lightest.host_gib, methods, seq)
    changes = _option_changes(search, seq, methods, micro_batch, explicit_seq, forced_method)
    if not explicit_seq and data is not None:
        changes.extend(_shorter_changes(search, seq, methods[-1], mb, data))
    changes.extend(_hardware_changes(search, method, seq, v, mb, need))
    return PlanError(
        f"nothing fits in {gib(search.budget)} per "
        f"{'process' if search.hardware.is_cpu else 'GPU'}: "
        f"the lightest setup ({desc}) needs {gib(need)}",
        hint="smallest changes that fit: " + "; or ".join(changes) + "; or a smaller model",
    )


def _option_changes(
    search: Search,
    seq: int,
    methods: list[Method],
    micro_batch: int | None,
    explicit_seq: bool,
    forced_method: Method | None,
) -> list[str]:
    """Overrides the user gave that a lighter value of would fit."""
    v = search.lightest_variant()
    mb = micro_batch or 1
    changes: list[str] = []
    if micro_batch is not None and micro_batch > 1:
        for m in methods:
            f = search.fit(m, seq, False, v, micro_batch - 1)
            if f.micro_batch:
                changes.append(
                    f"--micro-batch {f.micro_batch} ({m}, {gib(f.memory.total_gib if f.memory else 0)})"
                )
                break
    if forced_method is not None and not search.hardware.is_cpu:
        changes.extend(_other_method(search, seq, forced_method))
    if explicit_seq:
        for shorter in list(shrinking(seq, search.policy))[1:]:
            f = search.fit(methods[-1], shorter, False, v, mb, exact=mb)
            if f.micro_batch and f.memory is not None:
                changes.append(f"--seq-len {shorter} ({gib(f.memory.total_gib)})")
                break
    return changes


def _other_method(search: Search, seq: int, tried: Method) -> list[str]:
    """The first of LoRA, QLoRA (not `tried`) that fits at micro batch 1, as a change."""
    v = search.lightest_variant()
    for other in (m for m in ("lora", "qlora") if m != tried):
        f = search.fit(other, seq, False, v, 1)
        if f.micro_batch:
            return [f"--method {other} ({gib(f.at_one.total_gib)})"]
    return []


def _shorter_changes(
    search: Search, seq: int, method: Method, mb: int, data: DataSpec
) -> list[str]:
    """A --seq-len below the policy's floor that fits, and what it would cost in rows."""
    v = search.lightest_variant()
    for shorter in list(shrinking(seq, search.policy))[1:]:
        f = search.fit(method, shorter, False, v, mb, exact=mb)
        if f.micro_batch and f.memory is not None:
            fate = row_fate(data, shorter)
            return [
                f"--seq-len {shorter} ({method}, {gib(f.memory.total_gib)}; {describe(fate)}, "
                f"below the policy's min_rows_kept {search.policy.min_rows_kept:.0%})"
            ]
    return []


def _hardware_changes(
    search: Search, method: Method, seq: int, v: Variant, mb: int, need: float
) -> list[str]:
    """More memory: host memory on CPU, else a bigger GPU or more sharded GPUs."""
    policy = search.policy
    if search.hardware.is_cpu:
        return [f"about {need / policy.cpu_memory_fraction:.0f} GiB of host memory, or a GPU"]
    changes = [f"a GPU with >= {math.ceil(policy.raw_memory_for(need))} GiB"]
    if search.forced_distributed in ("ddp", "zero1", "zero2"):
        return changes
    sharded = search.forced_distributed or policy.sharded
    sharded_variant = Variant(True, v.optimizer, True)
    gpu = search.hardware.gpu
    assert gpu is not None
    name = gpu.profile or f"{gpu.memory_gib:.0f}GB"
    for n in (2, 4, 8, 16, 32, 64):
        if n <= search.world:
            continue
        s = search.setup(method, seq, False, sharded_variant, mb, world=n)
        if search.fits(search.estimate(s)):
            where = f"--gpu {n}x{name}" if n <= 8 else f"--gpu 8x{name} --nodes {n // 8}"
            changes.append(f"{n} such GPUs with {sharded} ({where})")
            break
    return changes


def _host_refusal(
    search: Search, desc: str, host_per_gpu: float, methods: list[Method], seq: int
) -> PlanError:
    """The lightest setup fits the GPUs only by offloading more than the host holds."""
    gpus = max(1, search.hardware.num_gpus)
    read = search.host_memory_gib is not None
    where = "read from this machine" if read else "assumed by speed.host_memory_gib_per_gpu"
    changes = []
    if not read:
        changes.append("plan with --gpu auto on the training machine to use its real host memory")
    changes.extend(_other_method(search, seq, methods[-1]))
    need_host = host_per_gpu * gpus / search.policy.speed.host_memory_fraction
    changes.append(f"a node with >= {math.ceil(need_host)} GiB of host memory")
    return PlanError(
        f"nothing fits: the lightest setup ({desc}) fits the GPUs only by offloading "
        f"{gib(host_per_gpu * gpus)} to host memory, more than the "
        f"{gib(search.host_budget())} offload may use ({where})",
        hint="smallest changes that fit: " + "; or ".join(changes),
    )

