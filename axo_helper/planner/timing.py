"""The time model: training FLOPs per token and steps, tokens and seconds per epoch.

docs/plan.md, "Time", derives each term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from axo_helper.planner import freeze
from axo_helper.planner.policy import Policy
from axo_helper.planner.speed import step_cost, utilisation
from axo_helper.specs import Hardware, RowFate, TrainSetup

if TYPE_CHECKING:
    from axo_helper.calibration import Calibration


@dataclass(frozen=True)
class Timing:
    steps_per_epoch: int | None = None
    seconds_per_epoch: float | None = None
    tokens_per_epoch: int | None = None
    seconds_per_step: float | None = None
    mfu: float | None = None
    tokens_per_second: float | None = None


def flops_per_token(setup: TrainSetup, context: float) -> float:
    """Training FLOPs per token (docs/plan.md, "Time").

    Matmul FLOPs: forward 2N; backward 4N for a full fine-tune (activation and weight
    gradients) but 2N for LoRA/QLoRA (frozen weights need no weight gradient; the
    adapters are negligible). Gradient checkpointing repeats the forward: +2N, and the
    attention scores unless selective checkpointing saved the attention outputs.
    N counts the weights that multiply (the input embedding is a lookup; the lm_head
    multiplies). Attention scores add 2 x 2 x layers x (heads x head_dim) x context/2 in
    the forward (causal: half the keys on average), backward twice that.
    """
    if setup.method == "freeze":
        return freeze.flops_per_token(setup, context)
    m = setup.model
    n = m.active_params - (0 if m.tie_word_embeddings else m.vocab_size * m.hidden_size)
    forward = 2.0 * n
    attn_fwd = 2.0 * m.num_layers * m.num_attention_heads * m.head_dim * context
    backward = (4.0 if setup.method == "full" else 2.0) * n + 2 * attn_fwd
    recompute = 0.0
    if setup.gradient_checkpointing:
        # selective checkpointing keeps the attention kernel's outputs: no rerun of it
        recompute = forward + (0.0 if setup.saves_attention else attn_fwd)
    return forward + attn_fwd + backward + recompute


@dataclass(frozen=True)
class _Epoch:
    tokens: int | None  # tokens the GPUs process, padding included (it is computed too)
    steps: int | None
    sample_len: float  # a sample's length (attention spans one sample)
    seq_tokens: float  # tokens in one sequence of a micro batch


def _epoch(setup: TrainSetup, fate: RowFate | None, policy: Policy, per_step: int) -> _Epoch:
    """What Axolotl trains (`fate`: rows kept, dropped rows gone, completion rows as chunks)."""
    seq, mb = setup.sequence_len, setup.micro_batch_size
    if fate is None:
        return _Epoch(None, None, float(seq), float(seq))
    if fate.sequences <= 0:  # every row dropped: nothing is trained
        return _Epoch(0, 0, float(seq), float(seq))
    sample_len = max(1.0, min(float(seq), fate.mean_len))
    seq_tokens = float(seq)
    if setup.sample_packing:
        sequences = math.ceil(fate.tokens_kept / (seq * policy.packing_efficiency))
    else:
        # A padded micro batch is as long as its longest sample: about the mean
        # for one sample, towards p95 for many.
        p95 = min(float(seq), float(fate.p95_len))
        seq_tokens = sample_len + max(0.0, p95 - sample_len) * (1.0 - 1.0 / mb)
        sequences = fate.sequences
    steps = max(1, math.ceil(sequences / per_step))
    return _Epoch(int(sequences * seq_tokens), steps, sample_len, seq_tokens)


def timing(
    hardware: Hardware,
    policy: Policy,
    setup: TrainSetup,
    fate: RowFate | None,
    ga: int,
    calibration: Calibration | None,
) -> Timing:
    """Steps, tokens and seconds per epoch (docs/plan.md, "Time")."""
    world = 1 if hardware.is_cpu else hardware.world_size
    sequences_per_step = setup.micro_batch_size * ga * world
    epoch = _epoch(setup, fate, policy, sequences_per_step)
    step_tokens = sequences_per_step * epoch.seq_tokens

    measured = calibration.tokens_per_s(setup) if calibration is not None else None
    gpu = hardware.gpu
    tflops = gpu.tflops_bf16 if gpu is not None else None
    mfu: float | None = None
    if measured is not None and measured > 0:
        tokens_per_second = float(measured)  # the run's throughput, as the store holds it
    elif tflops and gpu is not None:
        # Per rank: the step's matmuls at the micro step's utilisation, then what
        # communication and offload add (planner/speed.py).
        micro = utilisation(setup, gpu, policy.speed, setup.micro_batch_size * epoch.seq_tokens)
        if hardware.nodes > 1:
            micro *= policy.multi_node_scaling
        fpt = flops_per_token(setup, epoch.sample_len / 2.0)
        compute = (step_tokens / world) * fpt / (tflops * 1e12 * micro)
        cost = step_cost(setup, hardware, policy.speed, compute_seconds=compute, accumulation=ga)
        mfu = micro * compute / cost.total
        tokens_per_second = step_tokens / cost.total
    else:
        return Timing(steps_per_epoch=epoch.steps, tokens_per_epoch=epoch.tokens)

    return Timing(
        steps_per_epoch=epoch.steps,
        seconds_per_epoch=epoch.tokens / tokens_per_second if epoch.tokens else None,
        tokens_per_epoch=epoch.tokens,
        seconds_per_step=step_tokens / tokens_per_second,
        mfu=round(mfu, 4) if mfu is not None else None,
        tokens_per_second=tokens_per_second,
    )
