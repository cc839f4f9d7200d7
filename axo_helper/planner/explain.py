"""Why: the reasons behind each chosen value, the alternatives rejected, and the warnings."""

from __future__ import annotations

from axo_helper.dataset import CHARS_PER_TOKEN
from axo_helper.planner.lengths import COMPLETION_MAX_CHUNKS, describe
from axo_helper.planner.search import Choice, Search, VariantFit, gib
from axo_helper.specs import (
    METHODS,
    DataSpec,
    MemoryBreakdown,
    Method,
    ModelSpec,
    Rejected,
    RowFate,
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
    for m in after:
        bd = search.estimate(
            search.setup(m, choice.seq_len, choice.packing, choice.fit.variant, choice.micro_batch)
        )
        if m == "qlora":
            why_not = (
                f"not needed: {choice.method} fits; 4-bit base weights train ~30% slower and lose "
                "a little precision"
            )
        else:
            why_not = f"not needed: {choice.method} fits and trains every weight"
        out.append(Rejected(m, round(bd.total_gib, 2), why_not))
    return out


def _rejected_tried(search: Search, tried: Tried, choice: Choice, budget: float) -> Rejected | None:
    m, f, why = tried
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
            f"fits only with {search.optimizer_for(f.variant)}; the policy keeps full "
            "fine-tuning for when it fits with the default optimizer",
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
    """Faster rungs of the ladder that did not reach the chosen micro batch."""
    out: list[Rejected] = []
    for f in choice.fits[:-1]:
        label = f"{choice.method} ({search.label(f.variant)})"
        if f.micro_batch == 0:
            out.append(
                Rejected(
                    label,
                    round(f.at_one.total_gib, 2),
                    f"needs {gib(f.at_one.total_gib)} at micro batch 1 > {gib(search.budget)} budget",
                )
            )
        else:
            nxt = f.next_up
            need = (
                f" ({choice.micro_batch} would need more)"
                if nxt is None
                else (f"; the next size needs {gib(nxt.total_gib)}")
            )
            out.append(
                Rejected(
                    label,
                    round(f.memory.total_gib if f.memory else f.at_one.total_gib, 2),
                    f"reaches only micro batch {f.micro_batch}{need}",
                )
            )
    return out


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


def gc_reason(choice: Choice) -> str:
    v = choice.fit.variant
    if not v.gradient_checkpointing:
        return "off: fits without it (no recompute, ~25% faster)"
    faster = [f for f in choice.fits if not f.variant.gradient_checkpointing]
    if faster:
        f = faster[-1]
        if f.micro_batch == 0:
            return (
                f"on: without it micro batch 1 needs {gib(f.at_one.total_gib)}; it keeps ~2 "
                "activations per layer instead of all"
            )
        return f"on: without it only micro batch {f.micro_batch} fits, {choice.micro_batch} with it"
    return "on: the policy's ladder turns it on before this variant"


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


def distributed_reason(search: Search, choice: Choice) -> str:
    dist = choice.fit.variant and search.distributed_for(choice.fit.variant)
    world = search.world
    if world == 1:
        return "none: one device"
    forced = " (set by --distributed)" if search.forced_distributed else ""
    if dist in ("ddp", "zero1", "zero2"):
        return f"{dist}{forced}: a full replica of the model fits on each of {world} GPUs"
    replicas = [f for f in choice.fits if not f.variant.sharded]
    best = max(replicas, key=lambda f: f.micro_batch, default=None)
    if best is not None and best.micro_batch > 0:
        why = (
            f"a full replica per GPU reaches only micro batch {best.micro_batch}, "
            f"{choice.micro_batch} sharded; "
        )
    else:
        need = min((f.at_one.total_gib for f in replicas), default=None)
        why = f"a full replica needs {gib(need)} > {gib(search.budget)}; " if need else ""
    return (
        f"{dist}{forced}: {why}sharding weights, gradients and optimizer states across "
        f"{world} GPUs fits"
    )


# =========================================================================== warnings
def plan_warnings(
    data: DataSpec | None,
    model: ModelSpec,
    setup: TrainSetup,
    mem: MemoryBreakdown,
    budget: float,
    fate: RowFate | None,
) -> list[str]:
    """What the operator should know about the chosen setup, in the order shown."""
    out = data_warnings(data, fate)
    if model.generic:
        out.append(
            f"{model.architecture} is not a known architecture: the estimate uses generic "
            "config.json fields"
        )
    out.extend(moe_warnings(setup))
    if mem.total_gib > 0.97 * budget:
        out.append(
            f"the plan uses {mem.total_gib:.1f} of {budget:.1f} GiB: little margin for estimate error"
        )
    return out


def data_warnings(data: DataSpec | None, fate: RowFate | None) -> list[str]:
    if data is None:
        return []
    out = list(data.warnings)
    if data.approximate:
        out.append(
            "token counts are approximate (no local tokenizer: "
            f"{CHARS_PER_TOKEN} characters per token); pass "
            "--tokenizer DIR or a local --model for exact counts"
        )
    if fate is None:
        return out
    lost = fate.rows_dropped + fate.rows_truncated
    if fate.handling == "split":
        if fate.rows_truncated:
            out.append(
                f"{fate.rows_truncated:,} completion rows are longer than {COMPLETION_MAX_CHUNKS} "
                f"x sequence_len: Axolotl's tokenizer cuts them, {fate.tokens_dropped:,} "
                "tokens are not trained"
            )
    elif lost:
        out.append(
            f"{describe(fate)} (data p99 {data.tokens.p99:,}, longest {data.tokens.max:,}): "
            f"the config sets excess_length_strategy: {fate.handling}"
        )
    return out


def moe_warnings(setup: TrainSetup) -> list[str]:
    """MoE under QLoRA: what Axolotl 0.19 needs that the plan alone cannot give."""
    m = setup.model
    if not m.is_moe or setup.method != "qlora":
        return []
    if not setup.quantize_moe_experts:
        return [
            "MoE experts stay unquantized under QLoRA on this GPU (Axolotl's "
            "quantize_moe_experts needs CUDA): the estimate counts them so, and LoRA may "
            "need less"
        ]
    return []
