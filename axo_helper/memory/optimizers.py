"""Optimizer state per trainable parameter, for every Axolotl `optimizer:` value."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import BNB_8BIT_STATE_BYTES, FP32_BYTES, TORCHAO_4BIT_STATE_BYTES


@dataclass(frozen=True)
class OptimizerSpec:
    """Optimizer state per trainable parameter."""

    states: int  # state tensors per parameter (Adam: m and v)
    state_bytes: float | None  # bytes per state element; None = the parameter's dtype
    foreach: bool = False  # torch multi-tensor step: state-sized temporaries (Stack)
    paged: bool = False  # bitsandbytes paged: CUDA managed memory
    factored: bool = False  # Adafactor: row + column statistics per matrix


# Axolotl's `optimizer:` values (transformers OptimizerNames + Axolotl's custom ones).
# Torch-native optimizers keep state in the parameter's dtype (zeros_like(p)); the
# bitsandbytes "32bit" ones in fp32 whatever the parameter (bnb Optimizer2State).
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "adamw_torch": OptimizerSpec(2, None, foreach=True),
    "adamw_hf": OptimizerSpec(2, None, foreach=True),  # removed in transformers 5: torch AdamW
    "adamw_torch_fused": OptimizerSpec(2, None),
    "adamw_torch_npu_fused": OptimizerSpec(2, None),
    "adamw_anyprecision": OptimizerSpec(2, None),
    "adopt_adamw": OptimizerSpec(2, None),
    "adamc": OptimizerSpec(2, None),
    "stable_adamw": OptimizerSpec(2, None),
    "grokadamw": OptimizerSpec(3, None),  # + the grokfast EMA gradient
    # optimi AdamW adds a Kahan-summation buffer for 16-bit parameters (kahan_sum default).
    "optimi_adamw": OptimizerSpec(3, None),
    "adamw_bnb_8bit": OptimizerSpec(2, BNB_8BIT_STATE_BYTES),
    "adamw_8bit": OptimizerSpec(2, BNB_8BIT_STATE_BYTES),
    "paged_adamw_8bit": OptimizerSpec(2, BNB_8BIT_STATE_BYTES, paged=True),
    "paged_adamw_32bit": OptimizerSpec(2, FP32_BYTES, paged=True),
    "adamw_torch_8bit": OptimizerSpec(2, BNB_8BIT_STATE_BYTES),  # torchao AdamW8bit
    "ao_adamw_8bit": OptimizerSpec(2, BNB_8BIT_STATE_BYTES),
    "ao_adamw_fp8": OptimizerSpec(2, BNB_8BIT_STATE_BYTES),
    "adamw_torch_4bit": OptimizerSpec(2, TORCHAO_4BIT_STATE_BYTES),
    "ao_adamw_4bit": OptimizerSpec(2, TORCHAO_4BIT_STATE_BYTES),
    "ademamix": OptimizerSpec(3, FP32_BYTES),  # bnb AdEMAMix: m1, m2 (slow EMA), nu
    "ademamix_8bit": OptimizerSpec(3, BNB_8BIT_STATE_BYTES),
    "paged_ademamix_32bit": OptimizerSpec(3, FP32_BYTES, paged=True),
    "paged_ademamix_8bit": OptimizerSpec(3, BNB_8BIT_STATE_BYTES, paged=True),
    "lion_32bit": OptimizerSpec(1, FP32_BYTES),
    "lion_8bit": OptimizerSpec(1, BNB_8BIT_STATE_BYTES),
    "paged_lion_32bit": OptimizerSpec(1, FP32_BYTES, paged=True),
    "paged_lion_8bit": OptimizerSpec(1, BNB_8BIT_STATE_BYTES, paged=True),
    "rmsprop": OptimizerSpec(1, None, foreach=True),
    "rmsprop_bnb": OptimizerSpec(1, FP32_BYTES),
    "rmsprop_bnb_32bit": OptimizerSpec(1, FP32_BYTES),
    "rmsprop_bnb_8bit": OptimizerSpec(1, BNB_8BIT_STATE_BYTES),
    "adagrad": OptimizerSpec(1, None, foreach=True),
    # HF Trainer's "sgd" is torch.optim.SGD(lr) without momentum: no state.
    "sgd": OptimizerSpec(0, None),
    "schedule_free_adamw": OptimizerSpec(2, None),  # z and exp_avg_sq
    "schedule_free_radam": OptimizerSpec(2, None),
    "schedule_free_sgd": OptimizerSpec(1, None),
    "adafactor": OptimizerSpec(0, FP32_BYTES, factored=True),
    "came_pytorch": OptimizerSpec(1, None, factored=True),  # m + factored v and residual
}
# An optimizer we do not know is planned as AdamW (the common case) and said so.
_UNKNOWN_OPTIMIZER = OptimizerSpec(2, None, foreach=True)


def optimizer_spec(name: str) -> tuple[OptimizerSpec, bool]:
    """(spec, known) for an Axolotl `optimizer:` value."""
    spec = OPTIMIZERS.get(name.strip().lower())
    return (spec, True) if spec is not None else (_UNKNOWN_OPTIMIZER, False)
