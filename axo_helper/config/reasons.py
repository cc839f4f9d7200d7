"""The comment beside each rendered key when the plan gave no reason of its own."""

from __future__ import annotations

from axo_helper.specs import Plan

METHOD_REASON = {
    "full": "full fine-tune: every weight trains in 16-bit",
    "lora": "LoRA: the base stays frozen in 16-bit, small adapters train",
    "qlora": "QLoRA: the base is frozen in 4-bit NF4, small adapters train",
    "freeze": "partial fine-tune: the last blocks train in 16-bit, the rest stays frozen",
}
ATTENTION_REASON = {
    "flash_attention_2": "FlashAttention-2: this GPU supports it (compute capability 8.0+)",
    "sdpa": "PyTorch SDPA: no FlashAttention-2 here",
    "eager": "eager attention",
}
ZERO_REASON = {
    "zero1": "ZeRO-1: optimizer state sharded across the GPUs",
    "zero2": "ZeRO-2: optimizer state and gradients sharded",
    "zero3": "ZeRO-3: weights, gradients and optimizer state sharded",
}
PRECISION_REASON = {
    "bf16": "bf16 mixed precision: this GPU supports it",
    "fp16": "fp16 mixed precision: no bf16 on this GPU",
    "fp32": "fp32: no 16-bit mixed precision on this device",
}


def count(n: int) -> str:
    """A parameter count for people: 8.03B, 124.44M, 5.00k."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def gib(x: float) -> str:
    return f"{x:.1f} GiB"


def sequence_reason(plan: Plan) -> str:
    s, data = plan.setup, plan.data
    if data is not None and data.tokens.p99 <= s.sequence_len:
        return f"covers the data's p99 of {data.tokens.p99:,} tokens"
    if data is not None and data.type == "completion":
        return f"shorter than the data's p99 ({data.tokens.p99:,} tokens): longer rows are split into chunks"
    if data is not None:
        return f"shorter than the data's p99 ({data.tokens.p99:,} tokens): longer rows are dropped"
    return "policy default"


def packing_reason(plan: Plan) -> str:
    """The fallback comment (the planner's own reason, plan.reasons, says its rule)."""
    s, fate = plan.setup, plan.row_fate
    mean = f"mean sample {fate.mean_len:,.0f} tokens" if fate is not None else None
    if s.sample_packing:
        return f"{mean or 'short samples'}: several samples share one sequence, less padding"
    if mean is None:
        return "sample lengths unknown: packing off"
    return f"{mean} against sequence_len {s.sequence_len:,}: packing would gain little"
