"""Every constant of the memory model, each next to its source.

Bytes per stored parameter, optimizer-state sizes, DeepSpeed buffer sizes, fixed
overheads and the activation factors. The derivations and the calibration are in
docs/memory-model.md.
"""

from __future__ import annotations

# ---- bytes per parameter of stored weights ----------------------------------------
HALF_BYTES = 2  # bfloat16 / float16
FP32_BYTES = 4

# NF4 with double quantization, QLoRA (Dettmers et al. 2023, sec. 2 "Double
# Quantization"): 4-bit codes + an 8-bit absmax per 64-weight block + an fp32 constant
# per 256 absmax values = 4 + 8/64 + 32/(64*256) = 4.127 bits/param. Axolotl sets
# bnb_4bit_use_double_quant: true for QLoRA.
NF4_DQ_BYTES_PER_PARAM = (4 + 8 / 64 + 32 / (64 * 256)) / 8
# NF4 without double quantization: fp32 absmax per 64 weights = 4.5 bits/param (same paper).
NF4_BYTES_PER_PARAM = (4 + 32 / 64) / 8
# LLM.int8 (Dettmers et al. 2022; bitsandbytes Int8Params): one int8 per weight plus an
# fp32 scale per output row (4/d_in B/param, < 0.1% for LLM widths). Outliers are split
# off the *activations* on every forward pass, so nothing extra is stored with the weights.
INT8_BYTES_PER_PARAM = 1.0
# GPTQ int4, group size 128 (auto-gptq QuantLinear: int32-packed 4-bit weights, an fp16
# scale and a packed 4-bit zero point per group of 128 inputs): 4 + (16 + 4)/128 bits.
GPTQ_INT4_BYTES_PER_PARAM = (4 + (16 + 4) / 128) / 8

# ---- optimizer state ----------------------------------------------------------------
# bitsandbytes 8-bit optimizers keep each state as int8 blocks of 256 values with an
# fp32 absmax per block (bitsandbytes/optim/optimizer.py, block_wise=True; Dettmers et
# al. 2022 "8-bit Optimizers via Block-wise Quantization"). Tensors under 4096 elements
# stay 32-bit; that is negligible next to LLM matrices.
BNB_8BIT_STATE_BYTES = 1 + 4 / 256
# torchao AdamW4bit: 4-bit values with an fp32 scale per 128 (torchao.optim, block_size 128).
TORCHAO_4BIT_STATE_BYTES = 0.5 + 4 / 128
# Paged optimizers (bitsandbytes paged_*) allocate their state in CUDA managed memory,
# which the driver evicts to host RAM only when the GPU runs out. A plan must not
# count on eviction (it costs a PCIe round-trip per step), so all of it is counted on
# the GPU; it is invisible to torch.cuda.max_memory_allocated (not a torch allocation).
PAGED_STATE_ON_GPU_FRACTION = 1.0

# ---- DeepSpeed ----------------------------------------------------------------------
# ZeRO-1/2 with contiguous_gradients allocates reduce_bucket_size elements of 16-bit
# gradient buffer, twice with overlap_comm (deepspeed 0.18 runtime/zero/stage_1_and_2.py
# setup_buckets). Axolotl's deepspeed_configs/zero2.json leaves the size unset, so the
# DeepSpeed default of 5e8 elements applies (deepspeed/runtime/zero/config.py).
DS_DEFAULT_REDUCE_BUCKET = 5e8
# ZeRO-3: Axolotl's zero3*.json set reduce_bucket_size and stage3_prefetch_bucket_size to
# "auto", which HF's deepspeed integration resolves to hidden^2 and 0.9*hidden^2.
DS_Z3_REDUCE_BUCKET_PER_HIDDEN2 = 1.0
DS_Z3_PREFETCH_BUCKET_PER_HIDDEN2 = 0.9
# Axolotl's zero3*.json set sub_group_size 0: the fp32 gradient materialised for the
# optimizer step is one parameter partition at a time (None in a Stack = per parameter).
DS_AXOLOTL_SUB_GROUP: float | None = None

# ---- overhead -----------------------------------------------------------------------
# CUDA context + loaded kernels + cuBLAS/cuBLASLt workspaces of a PyTorch process, seen
# by nvidia-smi but not by torch.cuda.max_memory_allocated. With lazy module loading
# (default since CUDA 11.7 / torch 1.13) it measures 0.3-0.6 GiB on A100/H100 before the
# first tensor; flash-attn, bitsandbytes and NCCL kernels add to it once loaded.
# Published estimates bracket it at 0.5-1 GB; 0.75 GiB is the middle, kept after the
# calibration in docs/memory-model.md (the dev-set median moved < 1 point over 0.5-1.0).
CUDA_CONTEXT_GIB = 0.75
# The caching allocator keeps freed blocks reserved and splits them imperfectly, so
# max_memory_reserved exceeds max_memory_allocated by a share of the memory that comes
# and goes each step (activations, loss buffers, optimizer temporaries); weights and
# optimizer state are allocated once in large blocks and barely fragment. 10% is the
# middle of the 5-20% reserve/allocation gap commonly reported for LLM training
# (allocator reserve); expandable_segments narrows it.
ALLOCATOR_RESERVE_FRACTION = 0.10
# NCCL's own device buffers per process (NCCL_BUFFSIZE 4 MiB per channel per peer per
# protocol, outside PyTorch's allocator): a few hundred MiB on an 8-GPU node.
NCCL_BUFFERS_GIB = 0.3

# ---- activations --------------------------------------------------------------------
# Without gradient checkpointing every block's saved tensors stay alive. On the Axolotl
# stack the tensors named op by op in activations.py are all of them: the real step
# traced on fake tensors (axo-helper trace, benchmarks/trace_vs_estimate.py) matches them
# within 1% per block for every preset, once each LoRA adapter's own 16-bit input copy
# and the fp32 residual stream of fp32-embedding full fine-tunes are counted. Other
# stacks keep more: litgpt's blocks measure 1.25x the named tensors (the dev set's
# no-checkpointing rows), which is that Stack's `no_checkpointing_factor`.
NO_CHECKPOINTING_SAVED_FACTOR = 1.0
# PEFT's ParamWrapper (lora_target_parameters, peft/tuners/lora/layer.py _activate_lora)
# builds W + B@A as a whole tensor under torch parametrize each forward: autograd keeps
# that sum for the input gradient, and backward makes its gradient of the same size. So
# one adapted block holds 2 weight-dtype copies of its wrapped tensors, plus the delta
# B@A in the adapters' dtype (einsum before the cast). Derived, not yet measured.
PARAM_WRAPPER_WEIGHT_COPIES = 2
# A torch dropout mask is a bool tensor: 1 byte per element (aten native_dropout).
DROPOUT_MASK_BYTES = 1
# Fused linear cross-entropy (Liger FLCE, Cut Cross Entropy) never materialises the
# b*s*V logits: Liger processes token chunks of about b*s*h/V rows (chunk logits of
# ~b*s*h elements, 16-bit) and keeps the grad of the hidden states (b*s*h, 16-bit):
# ~2 hidden-sized 16-bit tensors per token (liger_kernel/ops/fused_linear_cross_entropy.py).
FUSED_CE_HIDDEN_COPIES = 2
# Activation offloading (Axolotl activation_offloading: true, TRL's OffloadActivations
# with CUDA streams, trl/models/activation_offloading.py): every saved tensor over
# min_offload_size (1 KiB) goes to pinned host memory as forward saves it, except the
# last ones: up to max_fwd_stash_size (5) stay on the GPU so the copies overlap compute,
# and backward prefetches the next one while it uses the current. Under checkpointing
# the saved tensors are the blocks' inputs, so about this many stay resident.
ACTIVATION_OFFLOAD_RESIDENT = 6
# Model types whose blocks run attention and MLP in parallel off one shared norm, so the
# two branches read the same normalised input (phi-1/1.5/2, GPT-J, Cohere).
PARALLEL_BLOCK_TYPES = frozenset({"phi", "gptj", "cohere"})
# Families using LayerNorm rather than RMSNorm (matters only without autocast: LayerNorm
# then saves its 16-bit input, RMSNorm implementations upcast to fp32 explicitly).
LAYERNORM_TYPES = frozenset({"phi", "gpt_neox", "gpt2", "gptj", "falcon", "starcoder2"})
# Families whose RMSNorm multiplies in fp32, x * (1 + weight.float()) (Gemma 1/2/3): a
# trainable norm weight's gradient reads the fp32 normalised input (traced).
FP32_NORM_OUTPUT_TYPES = frozenset({"gemma", "gemma2", "gemma3", "gemma3_text"})
# Families with extra pre/post norms per block (Gemma 2/3: four RMSNorms per layer).
FOUR_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})
# Families whose head applies a final logit soft-cap, tanh(logits / cap) * cap (Gemma 2:
# final_logit_softcapping 30); tanh saves its output for backward, one more 16-bit
# tensor over the vocabulary (traced: 14 rather than 12 bytes per logit).
SOFTCAP_TYPES = frozenset({"gemma2"})
# Families that normalise q and k per head before rotary (RMSNorm of head_dim):
# Qwen 3 (q_norm, k_norm), Gemma 3, OLMo 2/3 (traced on Qwen 3).
QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2", "olmo3"})
