"""Warnings: what the operator should know about the chosen setup, in the order shown."""

from __future__ import annotations

from axo_helper.dataset import CHARS_PER_TOKEN
from axo_helper.model.facts import generic_note
from axo_helper.planner.lengths import COMPLETION_MAX_CHUNKS, describe
from axo_helper.specs import DataSpec, MemoryBreakdown, ModelSpec, RowFate, TrainSetup


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
    generic = generic_note(model)
    if generic:
        out.append(generic)
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
