"""TrainSetup (what memory.estimate is asked) and MemoryBreakdown (its answer)."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.specs.base import Attention, Distributed, Method, Precision
from axo_helper.specs.model import ModelSpec


@dataclass(frozen=True)
class TrainSetup:
    """Everything memory.estimate needs; can describe any Axolotl config, not only ours."""

    model: ModelSpec
    method: Method = "lora"
    precision: Precision = "bf16"
    load_in_8bit: bool = False  # LoRA over an LLM.int8 base
    lora_r: int = 16
    lora_targets: tuple[str, ...] = ("all-linear",)  # module names, or "all-linear"
    # Axolotl lora_target_parameters: parameter tensors PEFT wraps (ParamWrapper), the
    # only way to adapt MoE experts that transformers 5 fuses into 3D tensors.
    lora_target_parameters: tuple[str, ...] = ()
    lora_dropout: float = 0.05
    lora_modules_to_save: tuple[str, ...] = ()  # e.g. ("embed_tokens", "lm_head")
    sequence_len: int = 2048
    micro_batch_size: int = 1
    sample_packing: bool = False
    gradient_checkpointing: bool = True
    # Axolotl activation_offloading: true (TRL's OffloadActivations, CUDA streams): the
    # tensors saved for backward (under checkpointing, each block's input) wait in
    # pinned host memory. Axolotl requires gradient_checkpointing with it.
    activation_offloading: bool = False
    # Axolotl selective_checkpointing: true (save: [attention]): within each checkpointed
    # block the attention kernel's outputs are saved instead of recomputed in backward.
    selective_checkpointing: bool = False
    attn_implementation: Attention = "sdpa"
    optimizer: str = "adamw_torch_fused"  # Axolotl's `optimizer:` value
    fused_cross_entropy: bool = False  # Liger FLCE / Cut Cross Entropy
    num_gpus: int = 1  # data-parallel ranks (all nodes)
    distributed: Distributed = "none"
    cpu_offload: bool = False  # ZeRO/FSDP optimizer (and param, for ZeRO-3) offload
    quant_storage_bf16: bool = False  # bnb_4bit_quant_storage: bfloat16 (QLoRA + FSDP/ZeRO-3)
    # Only FSDP memory depends on it: HF Trainer skips the gradient reduce-scatter on
    # accumulation micro-steps (no_sync), so FSDP gradients stay unsharded when > 1.
    # None = not decided yet: assume > 1 (the conservative case).
    gradient_accumulation_steps: int | None = None
    # Axolotl quantize_moe_experts: bitsandbytes-quantize the fused MoE expert tensors
    # (transformers 5 keeps them outside nn.Linear, so k-bit loading skips them otherwise).
    quantize_moe_experts: bool = False
    # method "freeze": the last `trainable_layers` blocks (and the final norm) train,
    # the blocks before them and the embeddings stay frozen (Axolotl unfrozen_parameters);
    # `train_head` trains the output head too (the tied embedding, when it is tied).
    trainable_layers: int = 0
    train_head: bool = False

    @property
    def saves_attention(self) -> bool:
        """Selective checkpointing in effect: Axolotl's save policy matches the SDPA and
        flash-attention kernels (not eager attention), inside checkpointed blocks only."""
        return (
            self.gradient_checkpointing
            and self.selective_checkpointing
            and self.attn_implementation != "eager"
        )

    @property
    def frozen_layers(self) -> int:
        """Blocks that keep requires_grad False: all but the trainable ones (freeze only)."""
        if self.method != "freeze":
            return 0
        return max(0, self.model.num_layers - max(0, self.trainable_layers))


@dataclass(frozen=True)
class MemoryBreakdown:
    """Predicted peak memory per GPU, in GiB, and where it goes."""

    weights_gib: float
    trainable_state_gib: float  # gradients + optimizer states + fp32 master copies
    activations_gib: float
    logits_gib: float
    overhead_gib: float  # CUDA context, cuBLAS workspace, allocator reserve, comm buffers
    total_gib: float
    trainable_params: int
    notes: tuple[str, ...] = ()  # assumptions that shaped the numbers
    # What torch.cuda.max_memory_allocated would report: tensors only, without the CUDA
    # context, the allocator's reserve, NCCL's own buffers or paged (managed) optimizer state.
    allocated_gib: float = 0.0
    host_gib: float = 0.0  # host RAM taken by CPU-offloaded optimizer state / parameters

    def as_dict(self) -> dict[str, float]:
        return {
            "weights_gib": round(self.weights_gib, 2),
            "trainable_state_gib": round(self.trainable_state_gib, 2),
            "activations_gib": round(self.activations_gib, 2),
            "logits_gib": round(self.logits_gib, 2),
            "overhead_gib": round(self.overhead_gib, 2),
            "total_gib": round(self.total_gib, 2),
        }
