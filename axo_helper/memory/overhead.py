"""Fixed costs per GPU: CUDA context, NCCL buffers, communication buckets and the
gathered-layer buffers of ZeRO-3/FSDP."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import (
    CUDA_CONTEXT_GIB,
    DS_Z3_PREFETCH_BUCKET_PER_HIDDEN2,
    DS_Z3_REDUCE_BUCKET_PER_HIDDEN2,
    NCCL_BUFFERS_GIB,
)
from axo_helper.memory.params import block_params
from axo_helper.memory.sharding import element_bytes, ranks
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.memory.state import StateBytes
from axo_helper.specs import GIB, TrainSetup


@dataclass(frozen=True)
class OverheadBytes:
    comm: float  # torch-allocated communication / gather buffers (seen by max_allocated)
    external: float  # CUDA context + NCCL buffers (not torch allocations)
    notes: tuple[str, ...]


def overhead(setup: TrainSetup, state: StateBytes, stack: Stack = AXOLOTL) -> OverheadBytes:
    """Fixed costs: context, communication buckets and gathered-layer buffers."""
    m = setup.model
    half = element_bytes(setup)
    n = ranks(setup)
    notes: list[str] = []
    comm = 0.0
    external = CUDA_CONTEXT_GIB * GIB
    if setup.num_gpus > 1 and setup.distributed != "none":
        external += NCCL_BUFFERS_GIB * GIB
    d = setup.distributed
    if d == "ddp" and n > 1:
        # DDP's Reducer keeps bucket buffers covering every gradient
        # (gradient_as_bucket_view=False, accelerate's default).
        comm += state.grads_full
        notes.append("DDP gradient buckets: one extra copy of the gradients")
    elif d in ("zero1", "zero2"):
        # contiguous_gradients + overlap_comm: two reduce buckets (Axolotl's zero*.json).
        comm += 2 * stack.ds_reduce_bucket * half
    elif d == "zero3":
        h2 = m.hidden_size**2
        comm += 2 * DS_Z3_REDUCE_BUCKET_PER_HIDDEN2 * h2 * half
        comm += DS_Z3_PREFETCH_BUCKET_PER_HIDDEN2 * h2 * half
        # The module being run is gathered whole: a block, or the embedding/lm_head.
        comm += max(block_params(m), m.vocab_size * m.hidden_size) * half
    elif d == "fsdp" and n > 1:
        # The block running and the one prefetched are unsharded; the root module
        # (embeddings, lm_head, final norm) is not resharded after forward in FSDP2;
        # one block's unsharded gradient waits for its reduce-scatter.
        comm += 2 * block_params(m) * half
        comm += m.embedding_params * half * (1 - 1 / n)
        comm += block_params(m) * half
    return OverheadBytes(comm=comm, external=external, notes=tuple(notes))
