"""Partial fine-tuning ("freeze"): how many blocks train, when the planner may choose
it, why, and what its step costs in FLOPs (docs/plan.md, "Partial fine-tuning")."""

from __future__ import annotations

import math

from axo_helper.errors import UsageError
from axo_helper.memory.freeze import block_size, graph_through_frozen
from axo_helper.planner.policy import Policy
from axo_helper.specs import Method, ModelSpec, TrainSetup


def check_override(method: Method | None, freeze_layers: float | None) -> Method | None:
    """The method --freeze-layers implies (freeze), or UsageError when it contradicts one."""
    if freeze_layers is None:
        return method
    if method not in (None, "freeze"):
        raise UsageError(
            f"--freeze-layers applies to --method freeze, not --method {method}",
            hint="drop --freeze-layers, or use --method freeze",
        )
    if isinstance(freeze_layers, bool) or freeze_layers <= 0:
        raise UsageError(
            f"--freeze-layers must be a block count (>= 1) or a fraction in (0, 1), not "
            f"{freeze_layers}",
            hint="e.g. --freeze-layers 4 (the last 4 blocks) or --freeze-layers 0.25",
        )
    if freeze_layers > 1 and freeze_layers != int(freeze_layers):
        raise UsageError(
            f"--freeze-layers {freeze_layers}: a count must be a whole number",
            hint="e.g. --freeze-layers 4, or a fraction such as 0.25",
        )
    return "freeze"


def runs_on_cpu(method: Method | None, cpu_methods: tuple[Method, ...]) -> bool:
    """--method freeze on CPU: it needs what a full fine-tune needs (no bitsandbytes)."""
    return method == "freeze" and "full" in cpu_methods


def trainable_layers(model: ModelSpec, policy: Policy, freeze_layers: float | None) -> int:
    """Blocks that train: --freeze-layers (a count, or a fraction of the blocks), else the
    policy's fraction; at least 1, at most all of them."""
    n = model.num_layers
    share = policy.freeze.trainable_fraction if freeze_layers is None else freeze_layers
    count = share if share >= 1 else math.ceil(share * n)
    return max(1, min(n, int(count)))


def too_large(policy: Policy, model: ModelSpec) -> bool:
    """The policy chooses freeze without --method only for models up to its size."""
    return model.total_params > policy.freeze.max_params_b * 1e9


def size_reason(policy: Policy, model: ModelSpec) -> str:
    return (
        f"{model.total_params / 1e9:.1f}B parameters is above the policy's "
        f"{policy.freeze.max_params_b:g}B limit for partial fine-tuning (--method freeze forces it)"
    )


def describe(setup: TrainSetup) -> str:
    """What trains, for the method's reason and the plan's table."""
    m = setup.model
    kept = m.num_layers - setup.frozen_layers
    head = ", the final norm and the output head" if setup.train_head else " and the final norm"
    return (
        f"the last {kept} of {m.num_layers} blocks (from block {setup.frozen_layers}){head} "
        "train; the embeddings and earlier blocks stay frozen"
    )


def flops_per_token(setup: TrainSetup, context: float) -> float:
    """Training FLOPs per token of a partial fine-tune (docs/plan.md, "Time").

    Forward: 2 x the multiplying weights of every block and the head, plus attention
    scores. Backward: 4 x (activation and weight gradients) only for the trained blocks;
    the head's input gradient (2 x head, 4 x when it trains); the frozen blocks need none,
    since the embedding output does not require grad: the backward stops at the first
    unfrozen block. Checkpointing recomputes the trained blocks' forward only. Training
    the head makes the frozen blocks run an input-gradient backward (2x) and recompute.
    """
    m = setup.model
    layers = m.num_layers
    trained = layers - setup.frozen_layers
    head = m.vocab_size * m.hidden_size
    block = block_size(m) * (m.active_params / max(1, m.total_params))  # MoE: active share
    attn = 2.0 * m.num_attention_heads * m.head_dim * context  # one block's scores, forward
    forward = layers * (2.0 * block + attn) + 2.0 * head
    backward = trained * (4.0 * block + 2 * attn) + (4.0 if setup.train_head else 2.0) * head
    # selective checkpointing keeps the attention outputs: the recompute skips the scores
    rerun = 0.0 if setup.saves_attention else attn
    recompute = trained * (2.0 * block + rerun) if setup.gradient_checkpointing else 0.0
    if graph_through_frozen(setup):
        frozen = setup.frozen_layers
        backward += frozen * (2.0 * block + 2 * attn)
        if setup.gradient_checkpointing:
            recompute += frozen * (2.0 * block + rerun)
    return forward + backward + recompute
