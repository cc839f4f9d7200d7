"""`estimate(setup) -> MemoryBreakdown`: the components combined into the peak per GPU."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.activations import (
    ActivationBytes,
    activations,
    embedding_backward_bytes,
    logits_bytes,
)
from axo_helper.memory.constants import (
    ALLOCATOR_RESERVE_FRACTION,
    CUDA_CONTEXT_GIB,
    NCCL_BUFFERS_GIB,
)
from axo_helper.memory.overhead import overhead
from axo_helper.memory.params import trainable_params
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.memory.state import StateBytes, trainable_state
from axo_helper.memory.weights import WeightBytes, weights
from axo_helper.specs import GIB, MemoryBreakdown, TrainSetup


@dataclass(frozen=True)
class TensorTerms:
    """The tensors the estimate counts, in bytes, before context and allocator reserve:
    what `axo-helper trace` measures on the real code (see axo_helper/trace)."""

    weights: float  # resident weights (base + adapters)
    state: float  # gradients + optimizer states + master copies on the GPU
    activations: float  # saved activations + the recompute working set beyond the loss
    logits: float  # the loss buffers over the vocabulary at their peak
    step: float  # the forward/backward peak on top of weights and state
    optimizer_step: float  # the optimizer step's temporaries

    @property
    def allocated(self) -> float:
        return self.weights + self.state + max(self.step, self.optimizer_step)


def tensor_terms(setup: TrainSetup, stack: Stack = AXOLOTL) -> TensorTerms:
    """weights, state, activations, logits of `setup` as estimate() combines them."""
    return _terms(
        weights(setup, stack),
        trainable_state(setup, stack),
        activations(setup, stack),
        logits_bytes(setup, stack),
        embedding_backward_bytes(setup, stack),
    )


def _terms(
    w: WeightBytes, st: StateBytes, act: ActivationBytes, logit: float, emb_bwd: float
) -> TensorTerms:
    # Activation phase: saved activations, plus the larger of the loss buffers and the
    # layer recompute working set (they are alive at different moments of backward).
    # A tied head's gradient sum at the end of backward is a moment of its own; when it
    # is the larger, it is counted with the loss buffers.
    act_phase = act.saved + max(logit, act.working)
    activations_b = act.saved + max(0.0, act.working - logit)
    return TensorTerms(
        weights=w.gpu,
        state=st.gpu,
        activations=activations_b,
        logits=max(logit, emb_bwd - activations_b),
        step=max(act_phase, emb_bwd),
        optimizer_step=st.step_temp,
    )


def estimate(setup: TrainSetup, stack: Stack = AXOLOTL) -> MemoryBreakdown:
    """Predicted peak memory per GPU (GiB) for `setup`, with its components.

    total = max_memory_reserved + CUDA context, i.e. what nvidia-smi shows for the
    process; `allocated_gib` is the max_memory_allocated part.
    """
    w = weights(setup, stack)
    st = trainable_state(setup, stack)
    act = activations(setup, stack)
    ov = overhead(setup, st, stack)
    terms = _terms(
        w, st, act, logits_bytes(setup, stack), embedding_backward_bytes(setup, stack)
    )
    act_phase = terms.step
    step_phase = terms.optimizer_step
    dynamic = max(act_phase, step_phase)

    activations_b = terms.activations
    logits_b = terms.logits
    state_b = st.gpu
    notes = [*w.notes, *st.notes, *act.notes, *ov.notes]
    if step_phase > act_phase:
        state_b += step_phase - act_phase
        notes.append("the optimizer step's temporaries outgrow the activations")
    reserve = ALLOCATOR_RESERVE_FRACTION * dynamic
    weights_b = w.gpu
    allocated = w.gpu + st.gpu + dynamic + ov.comm
    # Loading a k-bit model briefly holds the fp32-upcast non-quantized parameters
    # (prepare_model_for_kbit_training) before Axolotl casts them back (see Stack).
    load = w.load_peak + ov.comm
    if load > allocated:
        notes.append("the loading peak (fp32 upcast before training) exceeds the training peak")
        weights_b += load - allocated
        allocated = load
    overhead_b = ov.comm + ov.external + reserve
    total_b = weights_b + state_b + activations_b + logits_b + overhead_b
    if setup.fused_cross_entropy:
        notes.append("fused cross-entropy: logits computed in chunks, never for all tokens")
    if setup.attn_implementation == "sdpa":
        notes.append(
            "sdpa assumed to pick a fused kernel (flash / memory-efficient); the math "
            "fallback (CPU, unsupported dtypes) stores s x s scores per layer like eager"
        )
    return MemoryBreakdown(
        weights_gib=weights_b / GIB,
        trainable_state_gib=state_b / GIB,
        activations_gib=activations_b / GIB,
        logits_gib=logits_b / GIB,
        overhead_gib=overhead_b / GIB,
        total_gib=total_b / GIB,
        trainable_params=trainable_params(setup),
        notes=tuple(dict.fromkeys(notes)),
        allocated_gib=(allocated - st.paged) / GIB,
        host_gib=(w.host + st.host + act.host) / GIB,
    )


def reserved_gib(est: MemoryBreakdown, setup: TrainSetup) -> float:
    """The part of `est.total_gib` that torch.cuda.max_memory_reserved would report:
    the total less the CUDA context and NCCL's own buffers (what the plugin measures)."""
    external = CUDA_CONTEXT_GIB
    if setup.num_gpus > 1 and setup.distributed != "none":
        external += NCCL_BUFFERS_GIB
    return est.total_gib - external
