"""Why: the reasons behind each chosen value and the alternatives rejected
(planner/warnings.py: what the operator should know about the chosen setup)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from axo_helper.planner import freeze
from axo_helper.planner.policy import PARTIAL_CHOICES, SHARDED_CHOICES, Variant
from axo_helper.planner.search import Choice, Search, Timed, VariantFit, gib
from axo_helper.specs import (
    METHODS,
    MemoryBreakdown,
    Method,
    Rejected,
    TrainSetup,
)

# How a method left the search: "size" (over the full fine-tune limit), "nofit",
# or "squeezed" (full fits only with a lighter optimizer than the policy allows).
Tried = tuple[Method, VariantFit | None, str]


# =========================================================================== rejected
def rejected_methods(
    search: Search, tried: list[Tried], choice: Choice, methods: list[Method], budget: float
) -> list[Rejected]:
    out = [r for r in (_rejected_tried(search, t, choice, budget) for t in tried) if r]
    # Methods after the chosen one were not needed; show what they would have cost.
    after = methods[methods.index(choice.method) + 1 :]
    mine = f" ({duration(search, choice.seconds)})" if choice.seconds is not None else ""
    for m in after:
        setup = search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, choice.micro_batch)
        bd = search.estimate(setup)
        if m == "qlora":
            why_not = (
                f"not needed: {choice.method} fits{mine}; 4-bit base weights train slower"
                f"{_at(search, setup)} and lose a little precision"
            )
        elif m == "freeze":
            why_not = f"not needed: {choice.method} fits and trains every block"
        else:
            why_not = f"not needed: {choice.method} fits and trains every weight"
        out.append(Rejected(m, round(bd.total_gib, 2), why_not))
    if choice.method == "lora" and not search.hardware.is_cpu:
        # LoRA over an LLM.int8 base (load_in_8bit): the other memory-saving base
        eight = replace(
            search.setup("lora", choice.seq_len, choice.packing, choice.fit.variant, choice.micro_batch),
            load_in_8bit=True,
        )
        bd = search.estimate(eight)
        out.append(
            Rejected(
                "lora (8-bit base, load_in_8bit)",
                round(bd.total_gib, 2),
                f"not needed: 16-bit LoRA fits{mine}; LLM.int8 matmuls train slower"
                f"{_at(search, eight)}",
            )
        )
    return out


def _at(search: Search, setup: TrainSetup) -> str:
    seconds = search.seconds(setup)
    return f" ({duration(search, seconds)})" if seconds is not None else ""


def _rejected_tried(search: Search, tried: Tried, choice: Choice, budget: float) -> Rejected | None:
    m, f, why = tried
    if why == "size" and m == "freeze":
        bd = search.estimate(search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, 1))
        return Rejected(m, round(bd.total_gib, 2), freeze.size_reason(search.policy, search.model))
    if why == "size":
        bd = search.estimate(search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, 1))
        return Rejected(
            m,
            round(bd.total_gib, 2),
            f"{search.model.total_params / 1e9:.1f}B parameters is above the policy's "
            f"{search.policy.full_max_params_b:g}B limit for full fine-tuning "
            "(--method full forces it)",
        )
    if why == "squeezed" and f is not None and f.memory is not None:
        return Rejected(
            m,
            round(f.memory.total_gib, 2),
            f"fits only with {search.optimizer_for(f.variant)}"
            f"{' and CPU offload' if f.variant.offload else ''}; the policy keeps full "
            "fine-tuning for when it fits with the default optimizer on the GPU",
        )
    if f is not None:
        return Rejected(
            m,
            round(f.at_one.total_gib, 2),
            f"needs {gib(f.at_one.total_gib)} > {gib(budget)} budget even at micro batch 1 "
            f"with {search.label(f.variant)}",
        )
    return None


def rejected_variants(search: Search, choice: Choice) -> list[Rejected]:
    """The method's other variants: what each needs, or how fast it would have been."""
    out: list[Rejected] = []
    timed = {t.fit.variant: t for t in choice.ranked}
    for f in choice.fits:
        if f.variant == choice.fit.variant:
            continue
        label = f"{choice.method} ({search.label(f.variant)})"
        if f.micro_batch == 0:
            out.append(Rejected(label, round(f.at_one.total_gib, 2), _no_fit(search, f)))
            continue
        t = timed.get(f.variant)
        mem = t.fit.memory if t is not None and t.fit.memory else f.memory or f.at_one
        out.append(Rejected(label, round(mem.total_gib, 2), _slower(search, choice, t, f)))
    return out


def _no_fit(search: Search, f: VariantFit) -> str:
    if not search.host_fits(f.at_one):
        per_node = f.at_one.host_gib * max(1, search.hardware.num_gpus)
        return (
            f"offloads {gib(per_node)} to host memory per node > {gib(search.host_budget())} "
            "(the policy's share of the host's RAM)"
        )
    return f"needs {gib(f.at_one.total_gib)} at micro batch 1 > {gib(search.budget)} budget"


def _slower(search: Search, choice: Choice, t: Timed | None, f: VariantFit) -> str:
    if t is None or t.seconds is None or choice.seconds is None:
        return f"reaches only micro batch {f.micro_batch}; the chosen one reaches {choice.micro_batch}"
    mine = duration(search, t.seconds)
    if t.seconds <= choice.seconds * (1 + search.policy.speed.tie_fraction):
        return f"as fast ({mine} at micro batch {t.micro_batch}); the chosen setup is simpler"
    return (
        f"slower: {mine} at micro batch {t.micro_batch}, against "
        f"{duration(search, choice.seconds)}"
    )


def duration(search: Search, seconds: float) -> str:
    """A predicted time as the reasons say it: per epoch, or per 1M tokens without data."""
    data = search.data
    per = "per epoch" if data is not None and data.rows > 0 else "per 1M tokens"
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h {per}"
    if seconds >= 90:
        return f"{seconds / 60:.1f} min {per}"
    return f"{seconds:.0f} s {per}"


def _best_timed(choice: Choice, want: Callable[[Variant], bool]) -> Timed | None:
    return next((t for t in choice.ranked if want(t.fit.variant)), None)


# =========================================================================== reasons
def method_reason(choice: Choice, rejected: list[Rejected], auto: bool, budget: float) -> str:
    total = choice.fit.memory.total_gib if choice.fit.memory else 0.0
    if not auto:
        return f"set by --method; fits in {gib(total)} of {gib(budget)}"
    earlier = [r for r in rejected if r.method in METHODS and not r.reason.startswith("not needed")]
    if not earlier:
        return (
            f"{choice.method} is the policy's first choice and fits ({gib(total)} of {gib(budget)})"
        )
    skipped = "; ".join(f"{r.method}: {r.reason}" for r in earlier)
    return f"{choice.method} fits ({gib(total)} of {gib(budget)}); {skipped}"


def micro_reason(
    choice: Choice,
    mem: MemoryBreakdown,
    budget: float,
    forced: int | None,
    candidates: tuple[int, ...],
) -> str:
    head = f"{mem.total_gib:.1f} of {budget:.1f} GiB predicted"
    if forced is not None:
        return f"{head}; set by --micro-batch"
    nxt = choice.fit.next_up
    if choice.micro_batch >= choice.micro_cap:
        return f"{head}; larger is not needed: {choice.cap_reason}"
    if nxt is not None:
        up = next((c for c in candidates if c > choice.micro_batch), choice.micro_batch + 1)
        return f"{head}; {up} would need {nxt.total_gib:.1f} GiB"
    return head


def gc_reason(search: Search, choice: Choice) -> str:
    v = choice.fit.variant
    other = _best_timed(choice, lambda x: x.gradient_checkpointing != v.gradient_checkpointing)
    if not v.gradient_checkpointing:
        if other is not None and other.seconds is not None and choice.seconds is not None:
            return (
                f"off: no recompute is faster here ({duration(search, choice.seconds)}; with "
                f"checkpointing {duration(search, other.seconds)} at micro batch "
                f"{other.micro_batch})"
            )
        return "off: fits without it (no recompute, ~25% faster)"
    if other is None:
        need = min(
            (f.at_one.total_gib for f in choice.fits if not f.variant.gradient_checkpointing),
            default=None,
        )
        if need is None:
            return "on: the policy's ladder turns it on for every variant here"
        return (
            f"on: without it micro batch 1 needs {gib(need)}; it keeps ~2 activations per "
            "layer instead of all"
        )
    if other.seconds is not None and choice.seconds is not None:
        return (
            f"on: faster here ({duration(search, choice.seconds)} at micro batch "
            f"{choice.micro_batch}; without it micro batch {other.micro_batch}, "
            f"{duration(search, other.seconds)})"
        )
    return f"on: without it only micro batch {other.micro_batch} fits, {choice.micro_batch} with it"


def optimizer_reason(search: Search, choice: Choice) -> str:
    v = choice.fit.variant
    name = search.optimizer_for(v)
    if v.optimizer == "default":
        if search.hardware.is_cpu:
            return f"{name}: bitsandbytes 8-bit optimizers need a GPU"
        return f"{name}: fits without 8-bit optimizer states (fused kernel: fastest AdamW)"
    default = search.policy.optimizers["default"]
    default_fits = [f for f in choice.fits if f.variant.optimizer == "default"]
    best = max(default_fits, key=lambda f: f.micro_batch, default=None)
    if best is not None and best.micro_batch > 0:
        # The default optimizer fits, only at a smaller micro batch: say that, not "needs".
        purpose = f"needed to reach micro batch {choice.micro_batch}"
        extra = f"; {default} reaches only micro batch {best.micro_batch}"
        if best.next_up is not None:
            up = next(
                (c for c in search.policy.micro_batch_candidates if c > best.micro_batch),
                best.micro_batch + 1,
            )
            extra += f" ({up} needs {gib(best.next_up.total_gib)})"
    else:
        purpose = "needed to fit"
        need = min((f.at_one.total_gib for f in default_fits), default=None)
        extra = f"; {default} needs {gib(need)} at micro batch 1" if need else ""
    if v.optimizer == "paged":
        return f"{name}: 8-bit states that page to host memory under pressure, {purpose}{extra}"
    return f"{name}: 8-bit Adam states (~2 B/param instead of 8), {purpose}{extra}"


def fused_ce_reason(search: Search, choice: Choice) -> str:
    """Liger's fused linear cross-entropy, when the search could use it."""
    v = choice.fit.variant
    twin = _best_timed(choice, lambda x: x == replace(v, fused_ce=not v.fused_ce))
    tokens = choice.micro_batch * choice.seq_len
    logits = f"{tokens:,} x {search.model.vocab_size:,} logits"
    if v.fused_ce:
        if twin is None:
            return f"fused (Liger): without it the {logits} do not fit"
        if twin.seconds is not None and choice.seconds is not None:
            return (
                f"fused (Liger): the loss in chunks, never the {logits}; without it this "
                f"setup reaches micro batch {twin.micro_batch}, {duration(search, twin.seconds)}"
            )
        return f"fused (Liger): the loss in chunks, never the {logits}"
    return "standard: fits as it is; Liger's fused loss would not be faster here"


def selective_reason(search: Search, choice: Choice) -> str:
    """Why the attention outputs are kept instead of recomputed (only when they are)."""
    v = choice.fit.variant
    twin = _best_timed(choice, lambda x: x == replace(v, selective=False))
    head = "on: the recompute skips the attention scores"
    if twin is None or twin.seconds is None or choice.seconds is None:
        return head
    return (
        f"{head}, faster here ({duration(search, choice.seconds)}; recomputing them "
        f"{duration(search, twin.seconds)} at micro batch {twin.micro_batch})"
    )


def activation_offloading_reason(search: Search, choice: Choice) -> str:
    """Why the checkpointed blocks' inputs wait in host memory (only when they do)."""
    v = choice.fit.variant
    assert choice.fit.memory is not None
    host = f"{gib(choice.fit.memory.host_gib)} of saved block inputs in pinned host memory"
    twin = _best_timed(choice, lambda x: x == replace(v, activation_offloading=False))
    if twin is None:
        at_one = next(
            (f.at_one for f in choice.fits if f.variant == replace(v, activation_offloading=False)),
            None,
        )
        need = f": without it micro batch 1 needs {gib(at_one.total_gib)}" if at_one else ""
        return f"on, {host}{need}"
    if twin.seconds is not None and choice.seconds is not None:
        return (
            f"on, {host}: faster here ({duration(search, choice.seconds)}; without it micro "
            f"batch {twin.micro_batch}, {duration(search, twin.seconds)})"
        )
    return f"on, {host}: a larger micro batch fits ({choice.micro_batch}, not {twin.micro_batch})"


def distributed_reason(search: Search, choice: Choice) -> str:
    why = _distributed_why(search, choice)
    v, mem = choice.fit.variant, choice.fit.memory
    if v.offload and mem is not None and search.world > 1:
        what = "optimizer states"
        if search.distributed_for(v) in SHARDED_CHOICES:
            what += " and parameters"
        why += (
            f", with the {what} in host memory ({gib(mem.host_gib)} per GPU; Adam steps "
            "on the CPU)"
        )
    return why


def _distributed_why(search: Search, choice: Choice) -> str:
    dist = search.distributed_for(choice.fit.variant)
    world = search.world
    if world == 1:
        return "none: one device"
    forced = " (set by --distributed)" if search.forced_distributed else ""

    def best(want: Callable[[str | None], bool]) -> Timed | None:
        return _best_timed(choice, lambda x: want(search.distributed_for(x)))

    def at_one(want: Callable[[str | None], bool]) -> float | None:
        needs = [f.at_one.total_gib for f in choice.fits if want(search.distributed_for(f.variant))]
        return min(needs, default=None)

    if dist not in SHARDED_CHOICES:
        what = "a full replica of the model"
        if dist in PARTIAL_CHOICES:
            what = "a replica of the weights, with gradients and optimizer states sharded,"
        why = f"{dist}{forced}: {what} fits on each of {world} GPUs"
        ddp_need = at_one(lambda d: d == "ddp") if dist != "ddp" else None
        if ddp_need is not None and best(lambda d: d == "ddp") is None:
            why += f" (a DDP replica needs {gib(ddp_need)})"
        sharded_alt = best(lambda d: d in SHARDED_CHOICES)
        if sharded_alt is not None and sharded_alt.seconds is not None and choice.seconds:
            why += (
                f" and is faster ({duration(search, choice.seconds)}; fully sharded "
                f"{duration(search, sharded_alt.seconds)})"
            )
        return why
    replica = best(lambda d: d not in SHARDED_CHOICES)
    if replica is not None and replica.seconds is not None and choice.seconds is not None:
        kind = search.distributed_for(replica.fit.variant)
        why = (
            f"faster than a weight replica per GPU ({duration(search, choice.seconds)}; "
            f"{kind} {duration(search, replica.seconds)} at micro batch {replica.micro_batch}); "
        )
    else:
        need = at_one(lambda d: d not in SHARDED_CHOICES)
        why = f"a replica of the weights needs {gib(need)} > {gib(search.budget)}; " if need else ""
    return (
        f"{dist}{forced}: {why}sharding weights, gradients and optimizer states across "
        f"{world} GPUs fits"
    )
