"""Trainable state per GPU: gradients, optimizer states, DeepSpeed fp32 master weights,
the optimizer step's temporaries, and how ZeRO/FSDP/offload split them."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import FP32_BYTES, PAGED_STATE_ON_GPU_FRACTION
from axo_helper.memory.freeze import block_size, head_params, trainable_layers
from axo_helper.memory.optimizers import OptimizerSpec, optimizer_spec
from axo_helper.memory.params import (
    block_params,
    largest_tensor,
    modules_to_save_params,
    setup_lora_params,
)
from axo_helper.memory.sharding import element_bytes, is_deepspeed, ranks
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.memory.weights import full_embedding_bytes
from axo_helper.specs import TrainSetup


@dataclass(frozen=True)
class StateBytes:
    gpu: float  # gradients + optimizer state + master copies resident on the GPU
    host: float  # offloaded to host RAM
    step_temp: float  # extra bytes only during optimizer.step()
    paged: float  # part of `gpu` in CUDA managed memory (not a torch allocation)
    grads_full: float  # unsharded gradient bytes (DDP bucket copies are this size)
    notes: tuple[str, ...]


def _trainable_groups(setup: TrainSetup, stack: Stack) -> list[tuple[float, int]]:
    """(parameter count, bytes per parameter as stored) of each trainable group."""
    m = setup.model
    half = element_bytes(setup)
    if setup.method == "full":
        emb_bytes = full_embedding_bytes(setup, stack)
        if emb_bytes == half:
            return [(m.total_params, half)]
        return [(m.total_params - m.embedding_params, half), (m.embedding_params, emb_bytes)]
    if setup.method == "freeze":
        return _freeze_groups(setup, stack)
    n_lora = setup_lora_params(setup)
    saved, _ = modules_to_save_params(m, setup.lora_modules_to_save)
    adapter_bytes = half if is_deepspeed(setup) else max(stack.adapter_bytes, half)
    return [(n_lora, adapter_bytes), (saved, half)]


def _freeze_groups(setup: TrainSetup, stack: Stack) -> list[tuple[float, int]]:
    """The unfrozen blocks and final norm in the training dtype; the head, when it
    trains, in its loaded dtype (fp32 with sdpa/eager, as in a full fine-tune)."""
    m = setup.model
    half = element_bytes(setup)
    blocks = trainable_layers(setup) * block_size(m) + m.hidden_size
    return [(blocks, half), (head_params(setup), full_embedding_bytes(setup, stack))]


def trainable_state(setup: TrainSetup, stack: Stack = AXOLOTL) -> StateBytes:
    """Gradients, optimizer states and (DeepSpeed) fp32 master weights, per GPU.

    Without DeepSpeed, HF Trainer/Axolotl train the parameters in the dtype they were
    loaded in: `bf16: true` loads bf16 weights and torch's AdamW keeps bf16 moments,
    so there is no fp32 master copy (8 B/param for AdamW, not the ZeRO paper's 16).
    DeepSpeed keeps an fp32 master and fp32 moments (ZeRO paper, Rajbhandari et al.
    2020, sec. 3.1: 2 + 2 + 12 = 16 B/param for mixed-precision Adam).
    """
    spec, known = optimizer_spec(setup.optimizer)
    notes: list[str] = []
    if not known:
        notes.append(f"optimizer {setup.optimizer!r} unknown: planned as AdamW (2 states)")
    ds = is_deepspeed(setup)
    grads, states, master, temp = _unsharded(setup, stack, spec)
    if ds and master:
        notes.append("DeepSpeed keeps fp32 master weights and fp32 optimizer state")
    if spec.paged:
        notes.append(
            "paged optimizer: states live in CUDA managed memory and may spill to host RAM "
            "under pressure (counted on the GPU)"
        )

    n = ranks(setup)
    grads_div, states_div, frozen = _divisors(setup, stack, notes)
    grads = grads + frozen
    grads_full = grads
    grads_gpu = grads / grads_div
    opt_gpu = (states + master) / states_div
    host = 0.0
    if setup.cpu_offload and setup.distributed != "none":
        # ZeRO-Offload / FSDP CPUOffload: optimizer state and master weights (and, past
        # ZeRO-1, the reduced gradient partitions) move to host RAM.
        host = opt_gpu + (grads_gpu if setup.distributed != "zero1" else 0.0)
        if setup.distributed != "zero1":
            grads_gpu = 0.0
        opt_gpu = 0.0
        temp = 0.0
        notes.append("optimizer state offloaded to host RAM (CPU Adam step)")
    elif ds and master:
        temp = _deepspeed_step_temp(setup, stack, n)
    elif temp:
        temp /= states_div
    paged = opt_gpu * PAGED_STATE_ON_GPU_FRACTION if spec.paged else 0.0
    return StateBytes(
        gpu=grads_gpu + opt_gpu,
        host=host,
        step_temp=temp,
        paged=paged,
        grads_full=grads_full,
        notes=tuple(notes),
    )


def _unsharded(
    setup: TrainSetup, stack: Stack, spec: OptimizerSpec
) -> tuple[float, float, float, float]:
    """(gradients, optimizer states, fp32 master, step temporaries) in bytes, before
    ZeRO/FSDP split them."""
    m = setup.model
    ds = is_deepspeed(setup)
    grads = states = master = temp = 0.0
    for count, p_bytes in _trainable_groups(setup, stack):
        if count <= 0:
            continue
        grads += count * p_bytes
        if spec.factored:
            # Adafactor: fp32 row and column second-moment vectors per matrix
            # (~2/hidden of the matrix), plus a first moment when the optimizer has one.
            per = 2 * FP32_BYTES / m.hidden_size
            state_bytes_per_param = per + spec.states * (spec.state_bytes or p_bytes)
        else:
            s_bytes = spec.state_bytes
            if s_bytes is None:
                # torch optimizers: zeros_like(param); under DeepSpeed the optimizer sees
                # the fp32 master partition.
                s_bytes = FP32_BYTES if ds else p_bytes
            state_bytes_per_param = spec.states * s_bytes
        states += count * state_bytes_per_param
        if ds and p_bytes < FP32_BYTES:
            master += count * FP32_BYTES
        if spec.foreach and not ds:
            temp += stack.foreach_temp_states * count * (spec.state_bytes or p_bytes)
    if spec.factored and not ds:
        # HF Adafactor steps one parameter at a time through fp32 copies of the
        # parameter and of its update (transformers/optimization.py Adafactor.step).
        temp = 2 * FP32_BYTES * largest_tensor(setup)
    return grads, states, master, temp


def _divisors(setup: TrainSetup, stack: Stack, notes: list[str]) -> tuple[float, float, float]:
    """(gradient divisor, optimizer-state divisor, frozen gradient bytes FSDP1 adds):
    which parts are split across ranks (ZeRO paper sec. 5; FSDP shards everything)."""
    n = ranks(setup)
    grads_div = states_div = 1.0
    frozen = 0.0
    if setup.distributed == "zero1":
        states_div = n
    elif setup.distributed in ("zero2", "zero3"):
        grads_div = states_div = n
    elif setup.distributed == "fsdp":
        states_div = n
        ga = setup.gradient_accumulation_steps
        grads_div = n if ga == 1 else 1
        if n > 1 and ga != 1:
            notes.append(
                "FSDP with gradient accumulation: HF Trainer skips the reduce-scatter on "
                "accumulation steps (no_sync), so gradients stay unsharded"
            )
        if stack.fsdp_frozen_grads and setup.method != "full" and ga != 1:
            # FSDP1 flat parameters hold gradient storage for frozen members as well.
            frozen = float(
                setup.model.num_layers * block_params(setup.model) * element_bytes(setup)
            )
    return grads_div, states_div, frozen


def _deepspeed_step_temp(setup: TrainSetup, stack: Stack, n: int) -> float:
    """The 16-bit gradient partition is turned into an fp32 gradient for the step: the
    whole partition for ZeRO-1/2, one sub-group at a time for ZeRO-3."""
    part = sum(c for c, _ in _trainable_groups(setup, stack)) / n
    if setup.distributed == "zero3":
        if stack.ds_sub_group is None:
            biggest = max(largest_tensor(setup), 1) / n
            part = min(part, biggest)
        else:
            part = min(part, stack.ds_sub_group)
    return part * FP32_BYTES
