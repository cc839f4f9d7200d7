"""Training-memory model: the predicted peak GPU memory of one training process.

`estimate(setup) -> MemoryBreakdown` is pure arithmetic over the frozen dataclasses in
specs.py: no torch, no I/O. It answers "how much memory will this Axolotl config take
on each GPU", in GiB (2**30 bytes, what PyTorch and Axolotl print).

    peak = weights + trainable state + max(activation phase, optimizer-step phase)
           + overhead (CUDA context, allocator reserve, communication buffers)

The activation phase is the start of the backward pass: every saved activation is
alive and the loss buffers over the vocabulary peak. The optimizer-step phase is
when the activations are gone but the optimizer's temporaries exist. Gradients are
counted in both: under gradient accumulation they live across micro-batches.

Every constant below names its source (paper, library source read for this module,
or measurement). The derivations, the calibration against published measurements and
its error figures are in docs/memory-model.md; benchmarks/estimator_error.py prints them.

The behaviour modelled is Axolotl 0.19 on transformers 5, PEFT 0.20, bitsandbytes 0.50,
DeepSpeed 0.18 and torch 2.x (the `AXOLOTL` stack). Other training stacks differ in a
few documented ways (`Stack`); the benchmark uses that to compare against their
published numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from axo_helper.specs import GIB, LinearShape, MemoryBreakdown, ModelSpec, TrainSetup

# =========================================================================== constants
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
# Without gradient checkpointing every block's saved tensors stay alive, and that is where
# the op-by-op count is least certain: the dev set's no-checkpointing rows (litgpt, phi-1.5
# and Llama-2-7B, micro batch 1->4) grow 1.25-1.5x faster per token than the tensors we
# can name (autograd keeps extra views, casts and residual copies). 1.25 puts the
# Llama-2-7B rows within 1% and leaves phi-1.5 13% under; it errs on the side of
# checkpointing, which costs speed, not an OOM. To be re-measured on the Axolotl stack by
# benchmarks/gpu_measure.py.
NO_CHECKPOINTING_SAVED_FACTOR = 1.25
# A torch dropout mask is a bool tensor: 1 byte per element (aten native_dropout).
DROPOUT_MASK_BYTES = 1
# Fused linear cross-entropy (Liger FLCE, Cut Cross Entropy) never materialises the
# b*s*V logits: Liger processes token chunks of about b*s*h/V rows (chunk logits of
# ~b*s*h elements, 16-bit) and keeps the grad of the hidden states (b*s*h, 16-bit):
# ~2 hidden-sized 16-bit tensors per token (liger_kernel/ops/fused_linear_cross_entropy.py).
FUSED_CE_HIDDEN_COPIES = 2
# Model types whose blocks run attention and MLP in parallel off one shared norm, so the
# two branches read the same normalised input (phi-1/1.5/2, GPT-J, Cohere).
PARALLEL_BLOCK_TYPES = frozenset({"phi", "gptj", "cohere"})
# Families using LayerNorm rather than RMSNorm (matters only without autocast: LayerNorm
# then saves its 16-bit input, RMSNorm implementations upcast to fp32 explicitly).
LAYERNORM_TYPES = frozenset({"phi", "gpt_neox", "gpt2", "gptj", "falcon", "starcoder2"})
# Families with extra pre/post norms per block (Gemma 2/3: four RMSNorms per layer).
FOUR_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})


# =========================================================================== stacks
@dataclass(frozen=True)
class Stack:
    """How a training framework stores things, where that differs between frameworks.

    `AXOLOTL` is what estimate() models by default. Other stacks exist so that the
    benchmark can compare against measurements published for other software; each
    field says what it changes and why.
    """

    name: str
    # PEFT >= 0.12 upcasts LoRA weights to fp32 (autocast_adapter_dtype=True, peft
    # tuners_utils.cast_adapter_dtype); a "bf16-true" stack keeps them in 16-bit.
    adapter_bytes: int = FP32_BYTES
    # Bytes per element of the b*s*V logits at the loss peak. transformers' ForCausalLMLoss
    # upcasts with logits.float(): 16-bit logits + fp32 copy + fp32 log-softmax (forward),
    # then log-softmax + its fp32 gradient + the fp32 grad of the input (backward) = 12.
    logits_bytes: float = 12.0
    # The same under DeepSpeed. transformers' explicit .float() keeps 12; code that relies
    # on autocast to upcast the loss gets 16-bit logits there (HF Trainer disables
    # autocast when DeepSpeed owns precision): 2 + 2 (log-softmax) + 2 (grad) = 6.
    logits_bytes_deepspeed: float = 12.0
    # Loss computed under autocast / with fp32 norms. False = "bf16-true" (no autocast).
    autocast: bool = True
    # Axolotl (loaders/model.py _configure_embedding_dtypes) upcasts embed_tokens/lm_head
    # to fp32 before training and casts them back to 16-bit only for adapters, FSDP or
    # flash-style attention; a full fine-tune with sdpa/eager keeps them in fp32.
    fp32_embeddings_full_ft: bool = True
    # PEFT's prepare_model_for_kbit_training upcasts every non-quantized parameter to fp32.
    # "norms_embeddings_back": Axolotl then casts modules named *norm* and the embeddings
    #   back to 16-bit (loaders/model.py _convert_embedding_modules_dtype); anything else
    #   left unquantized stays fp32 (biases, and MoE expert tensors, which bitsandbytes
    #   does not quantize in transformers 5); the load peak sees the full fp32 copy.
    # "all": a plain PEFT script keeps the whole upcast.
    # "none": no upcast (GPTQ models, which prepare_model_for_kbit_training skips).
    kbit_fp32: Literal["norms_embeddings_back", "all", "none"] = "norms_embeddings_back"
    # bytes/param of the 4-bit base (None: NF4 with double quantization).
    quant_bytes: float | None = None
    # Lightning's BitsandbytesPrecision quantizes every nn.Linear, lm_head included.
    quantize_lm_head: bool = False
    # Older bitsandbytes (0.41, the litgpt rows) MatMul4Bit saved its input A for backward
    # (ctx.tensors = (A, B)); 0.50 keeps only the packed weight (autograd/_functions.py,
    # ctx.tensors = (None, B)), so a frozen 4-bit linear costs no activation memory.
    kbit_saves_input: bool = False
    # litgpt fuses q/k/v into one Linear with one LoRA dropout for all of them.
    fused_qkv_lora: bool = False
    # torch's multi-tensor (foreach) Adam step allocates state-sized temporaries: one in
    # current torch (torch/optim/adam.py _multi_tensor_adam: exp_avg_sq_sqrt, eps added in
    # place), two in torch 2.0 (sqrt and a separate denom).
    foreach_temp_states: int = 1
    # DeepSpeed ZeRO-1/2 reduce_bucket_size in elements (see DS_DEFAULT_REDUCE_BUCKET).
    ds_reduce_bucket: float = DS_DEFAULT_REDUCE_BUCKET
    # DeepSpeed ZeRO-3 sub_group_size (elements); None: one parameter at a time.
    ds_sub_group: float | None = DS_AXOLOTL_SUB_GROUP
    # FSDP1 flat parameters (use_orig_params) carry gradient storage for their frozen
    # members too; FSDP2 (Axolotl) shards per parameter and frozen ones get no gradient.
    fsdp_frozen_grads: bool = False


AXOLOTL = Stack(name="axolotl")


# =========================================================================== optimizers
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


# =========================================================================== LoRA
# Module names that read the same tensor inside a block (see _input_role). Knowing it
# matters for activations: a LoRA adapter saves its (dropped-out) input for backward.
_ATTN_IN = ("q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value", "wqkv")
_MLP_IN = ("gate_proj", "up_proj", "gate_up_proj", "w1", "w2", "fc1", "c_fc", "h_to_4h", "gate")
_ATTN_OUT = ("o_proj", "out_proj", "dense")  # c_proj: by width, see _input_role
_MLP_OUT = ("down_proj", "fc2", "4h_to_h", "w3")

# modules_to_save names: a full trainable copy of the input embedding or the output head.
_INPUT_EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "embed_in", "embeddings")
_OUTPUT_HEAD_NAMES = ("lm_head", "embed_out", "output")


def _matches(shape_name: str, target: str) -> bool:
    """PEFT's rule: a target names a module when it equals or suffixes its dotted path."""
    t = target.strip()
    return shape_name == t or shape_name.endswith("." + t) or t.endswith("." + shape_name)


def targeted_linears(model: ModelSpec, targets: Sequence[str]) -> tuple[LinearShape, ...]:
    """The block linears LoRA adapts. "all-linear" is PEFT's: every nn.Linear but lm_head
    (fused MoE expert tensors are not nn.Linear in transformers 5 and are skipped)."""
    if any(t.strip().lower() in ("all-linear", "all_linear") for t in targets):
        return tuple(ls for ls in model.linears if ls.nn_linear)
    return tuple(ls for ls in model.linears if any(_matches(ls.name, t) for t in targets))


def lora_params(model: ModelSpec, targets: Sequence[str], r: int) -> int:
    """LoRA parameters: r * (d_in + d_out) per adapted matrix (A is r x d_in, B is d_out x r),
    times experts for MoE expert tensors, times layers."""
    per_layer = sum((ls.d_in + ls.d_out) * ls.count for ls in targeted_linears(model, targets))
    return model.num_layers * r * per_layer


def modules_to_save_params(model: ModelSpec, names: Iterable[str]) -> tuple[int, tuple[str, ...]]:
    """Parameters of the full trainable copies PEFT makes for lora_modules_to_save, and
    the names it could not size."""
    total = 0
    unknown: list[str] = []
    matrix = model.vocab_size * model.hidden_size
    for name in names:
        leaf = name.strip().split(".")[-1]
        if leaf in _INPUT_EMBEDDING_NAMES or leaf in _OUTPUT_HEAD_NAMES:
            total += matrix
        else:
            unknown.append(name)
    return total, tuple(unknown)


def trainable_params(setup: TrainSetup) -> int:
    """Parameters the optimizer updates: all of them for a full fine-tune; adapters and
    modules_to_save copies for LoRA/QLoRA."""
    if setup.method == "full":
        return setup.model.total_params
    saved, _ = modules_to_save_params(setup.model, setup.lora_modules_to_save)
    return lora_params(setup.model, setup.lora_targets, setup.lora_r) + saved


# =========================================================================== helpers
def _half(setup: TrainSetup) -> int:
    """Bytes of a weight / activation element in the run's precision."""
    return FP32_BYTES if setup.precision == "fp32" else HALF_BYTES


def _deepspeed(setup: TrainSetup) -> bool:
    return setup.distributed in ("zero1", "zero2", "zero3")


def _sharded_params(setup: TrainSetup) -> bool:
    """Parameters themselves are split across ranks (ZeRO-3, FSDP full shard)."""
    return setup.distributed in ("zero3", "fsdp")


def _ranks(setup: TrainSetup) -> int:
    return max(1, setup.num_gpus) if setup.distributed != "none" else 1


def _norms_per_layer(model: ModelSpec) -> int:
    if model.model_type in PARALLEL_BLOCK_TYPES:
        return 1
    if model.model_type in FOUR_NORM_TYPES:
        return 4
    return 2


def _block_params(model: ModelSpec) -> int:
    """Parameters of one transformer block (for gathered-layer buffers)."""
    return sum(ls.d_in * ls.d_out * ls.count for ls in model.linears)


# =========================================================================== weights
@dataclass(frozen=True)
class _Weights:
    gpu: float  # bytes resident on each GPU for the whole run
    host: float  # bytes offloaded to host RAM
    load_peak: float  # bytes at the end of loading (k-bit fp32 upcast), before training
    notes: tuple[str, ...]


def _quant_bytes(stack: Stack) -> float:
    return stack.quant_bytes if stack.quant_bytes is not None else NF4_DQ_BYTES_PER_PARAM


def weights(setup: TrainSetup, stack: Stack = AXOLOTL) -> _Weights:
    """Model weights on each GPU: the base (frozen or trained) and LoRA adapter copies.

    Gradients, optimizer state and fp32 master copies are trainable state, not here.
    """
    m = setup.model
    half = _half(setup)
    notes: list[str] = []
    emb = m.embedding_params
    kbit = setup.method == "qlora" or (setup.method == "lora" and setup.load_in_8bit)

    base: float
    load_peak: float
    if setup.method == "full":
        base = (m.total_params - emb) * half + emb * _full_embedding_bytes(setup, stack)
        if _full_embedding_bytes(setup, stack) == FP32_BYTES and half == HALF_BYTES:
            notes.append(
                "full fine-tune with sdpa/eager attention: Axolotl keeps embed_tokens and "
                "lm_head in fp32 (flash_attention_2 or FSDP casts them back to 16-bit)"
            )
        if setup.precision == "fp16" and not _deepspeed(setup):
            notes.append(
                "fp16 full fine-tune: Axolotl loads fp16 weights, which the HF GradScaler "
                "refuses to unscale; use bf16, fp32 or DeepSpeed"
            )
        load_peak = base
    elif kbit:
        quantized = m.linear_params
        if stack.quantize_lm_head and not m.tie_word_embeddings:
            quantized += m.vocab_size * m.hidden_size
        experts_quantized = setup.quantize_moe_experts and m.is_moe
        if experts_quantized:
            quantized += m.num_layers * sum(
                ls.d_in * ls.d_out * ls.count
                for ls in m.linears
                if not ls.nn_linear and "experts" in ls.name
            )
        q_bytes = INT8_BYTES_PER_PARAM if setup.method == "lora" else _quant_bytes(stack)
        rest = m.total_params - quantized
        # Norm weights: one hidden-size vector per norm, plus the final norm.
        norms = (m.num_layers * _norms_per_layer(m) + 1) * m.hidden_size
        cast_back = min(rest, m.embedding_params + norms)
        # Axolotl skips k-bit preparation (and its upcast) once experts are quantized
        # (loaders/model.py: _moe_experts_quantized).
        kbit_fp32 = "none" if experts_quantized else stack.kbit_fp32
        if kbit_fp32 == "norms_embeddings_back":
            fp32_params = rest - cast_back
        elif kbit_fp32 == "all":
            fp32_params = rest
        else:
            fp32_params = 0
        base = quantized * q_bytes + (rest - fp32_params) * half + fp32_params * FP32_BYTES
        # The upcast happens before Axolotl casts back: the load-time peak.
        upcast = rest if kbit_fp32 != "none" else fp32_params
        load_peak = quantized * q_bytes + (rest - upcast) * half + upcast * FP32_BYTES
        if fp32_params > 0.01 * m.total_params:
            notes.append(
                f"k-bit training keeps {fp32_params / 1e9:.2f}B non-quantized parameters in "
                "fp32 (prepare_model_for_kbit_training's upcast)"
            )
        if m.is_moe and not experts_quantized and any(not ls.nn_linear for ls in m.linears):
            notes.append(
                "MoE expert tensors are not nn.Linear in transformers 5: bitsandbytes "
                "leaves them unquantized (and k-bit preparation upcasts them to fp32) "
                "unless quantize_moe_experts is set"
            )
    else:
        base = m.total_params * half
        load_peak = base

    # LoRA adapters and modules_to_save copies (their optimizer state is trainable state).
    adapters = 0.0
    if setup.method != "full":
        n_lora = lora_params(m, setup.lora_targets, setup.lora_r)
        # DeepSpeed casts the whole module to 16-bit (its fp32 master lives in the optimizer).
        adapter_bytes = half if _deepspeed(setup) else max(stack.adapter_bytes, half)
        saved, unknown = modules_to_save_params(m, setup.lora_modules_to_save)
        # PEFT deep-copies modules_to_save in the base dtype; cast_adapter_dtype only
        # upcasts LoRA layers (BaseTunerLayer), not ModulesToSaveWrapper.
        adapters = n_lora * adapter_bytes + saved * half
        if unknown:
            notes.append(f"lora_modules_to_save {', '.join(unknown)}: size unknown, not counted")
        if n_lora == 0 and not saved:
            notes.append("lora_target_modules match no linear layer of this model")

    gpu = base
    host = 0.0
    n = _ranks(setup)
    if _sharded_params(setup):
        if setup.method == "qlora" and not setup.quant_storage_bf16:
            notes.append(
                "QLoRA under FSDP/ZeRO-3 needs bnb_4bit_quant_storage: bfloat16 to shard "
                "the 4-bit base; without it every rank holds the whole base"
            )
        else:
            gpu = base / n
            load_peak = load_peak / n
        adapters /= n
        if setup.cpu_offload:
            host = gpu + adapters
            gpu, adapters = 0.0, 0.0
            notes.append("parameters offloaded to host RAM (ZeRO-3 offload_param / FSDP offload)")
    return _Weights(
        gpu=gpu + adapters, host=host, load_peak=load_peak + adapters, notes=tuple(notes)
    )


def _full_embedding_bytes(setup: TrainSetup, stack: Stack) -> int:
    """Axolotl's fp32 embed_tokens/lm_head in a full fine-tune (see Stack)."""
    if (
        stack.fp32_embeddings_full_ft
        and setup.method == "full"
        and setup.distributed in ("none", "ddp")
        and setup.attn_implementation in ("sdpa", "eager")
    ):
        return FP32_BYTES
    return _half(setup)


# =========================================================================== trainable state
@dataclass(frozen=True)
class _State:
    gpu: float  # gradients + optimizer state + master copies resident on the GPU
    host: float  # offloaded to host RAM
    step_temp: float  # extra bytes only during optimizer.step()
    paged: float  # part of `gpu` in CUDA managed memory (not a torch allocation)
    grads_full: float  # unsharded gradient bytes (DDP bucket copies are this size)
    notes: tuple[str, ...]


def _trainable_groups(setup: TrainSetup, stack: Stack) -> list[tuple[float, int]]:
    """(parameter count, bytes per parameter as stored) of each trainable group."""
    m = setup.model
    half = _half(setup)
    if setup.method == "full":
        emb_bytes = _full_embedding_bytes(setup, stack)
        if emb_bytes == half:
            return [(m.total_params, half)]
        return [(m.total_params - m.embedding_params, half), (m.embedding_params, emb_bytes)]
    n_lora = lora_params(m, setup.lora_targets, setup.lora_r)
    saved, _ = modules_to_save_params(m, setup.lora_modules_to_save)
    adapter_bytes = half if _deepspeed(setup) else max(stack.adapter_bytes, half)
    return [(n_lora, adapter_bytes), (saved, half)]


def trainable_state(setup: TrainSetup, stack: Stack = AXOLOTL) -> _State:
    """Gradients, optimizer states and (DeepSpeed) fp32 master weights, per GPU.

    Without DeepSpeed, HF Trainer/Axolotl train the parameters in the dtype they were
    loaded in: `bf16: true` loads bf16 weights and torch's AdamW keeps bf16 moments,
    so there is no fp32 master copy (8 B/param for AdamW, not the ZeRO paper's 16).
    DeepSpeed keeps an fp32 master and fp32 moments (ZeRO paper, Rajbhandari et al.
    2020, sec. 3.1: 2 + 2 + 12 = 16 B/param for mixed-precision Adam).
    """
    m = setup.model
    spec, known = optimizer_spec(setup.optimizer)
    notes: list[str] = []
    if not known:
        notes.append(f"optimizer {setup.optimizer!r} unknown: planned as AdamW (2 states)")
    ds = _deepspeed(setup)
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
        temp = 2 * FP32_BYTES * _largest_tensor(setup)
    if ds and master:
        notes.append("DeepSpeed keeps fp32 master weights and fp32 optimizer state")
    if spec.paged:
        notes.append(
            "paged optimizer: states live in CUDA managed memory and may spill to host RAM "
            "under pressure (counted on the GPU)"
        )

    n = _ranks(setup)
    grads_full = grads
    # Which parts are split across ranks (ZeRO paper sec. 5; FSDP shards everything).
    grads_div = states_div = 1.0
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
            frozen = m.num_layers * _block_params(m) * _half(setup)
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
        # The 16-bit gradient partition is turned into an fp32 gradient for the step:
        # the whole partition for ZeRO-1/2, one sub-group at a time for ZeRO-3.
        part = sum(c for c, _ in _trainable_groups(setup, stack)) / n
        if setup.distributed == "zero3":
            if stack.ds_sub_group is None:
                biggest = max(_largest_tensor(setup), 1) / n
                part = min(part, biggest)
            else:
                part = min(part, stack.ds_sub_group)
        temp = part * FP32_BYTES
    elif temp:
        temp /= states_div
    paged = opt_gpu * PAGED_STATE_ON_GPU_FRACTION if spec.paged else 0.0
    return _State(
        gpu=grads_gpu + opt_gpu,
        host=host,
        step_temp=temp,
        paged=paged,
        grads_full=grads_full,
        notes=tuple(notes),
    )


def _largest_tensor(setup: TrainSetup) -> int:
    """Elements of the largest trainable tensor (a ZeRO-3 sub-group of size 0 holds one)."""
    m = setup.model
    head = m.vocab_size * m.hidden_size
    if setup.method == "full":
        return max(max((ls.d_in * ls.d_out * ls.count for ls in m.linears), default=0), head)
    adapters = targeted_linears(m, setup.lora_targets)
    biggest = max((setup.lora_r * max(ls.d_in, ls.d_out) * ls.count for ls in adapters), default=0)
    saved, _ = modules_to_save_params(m, setup.lora_modules_to_save)
    return max(biggest, head if saved else 0)


# =========================================================================== activations
@dataclass(frozen=True)
class _Activations:
    saved: float  # bytes saved for backward over all layers (+ model-level tensors)
    working: float  # one layer's recompute (GC) + backward transients
    notes: tuple[str, ...]


def _input_role(ls: LinearShape, model: ModelSpec) -> str:
    """Which tensor a block linear reads: linears with the same role share one input."""
    name = ls.name.lower()
    leaf = name.split(".")[-1]
    if leaf == "c_proj":  # GPT-2 / Qwen-1 use c_proj for both projections out
        return "attn_out" if ls.d_in != model.intermediate_size else "mlp_out"
    if "experts" in name:
        return "expert_out" if "down" in leaf else "expert_in"
    if any(leaf == n or leaf.endswith(n) for n in _ATTN_IN):
        role = "attn_in"
    elif any(leaf == n or leaf.endswith(n) for n in _MLP_IN):
        role = "mlp_in"
    elif leaf in _ATTN_OUT:
        role = "attn_out"
    elif any(leaf == n or leaf.endswith(n) for n in _MLP_OUT):
        role = "mlp_out"
    else:
        return f"other:{ls.name}"
    if role == "mlp_in" and model.model_type in PARALLEL_BLOCK_TYPES:
        return "attn_in"  # one shared norm feeds attention and MLP
    return role


def _layer_bytes_per_token(setup: TrainSetup, stack: Stack) -> tuple[float, float]:
    """(bytes saved for backward by one block, backward transients) per token.

    Derived from what each op saves in torch autograd (derivatives.yaml): a Linear saves
    its input only when its weight is trainable; norms save their fp32-upcast input;
    SiLU saves its input, the gate*up product both factors; flash/SDPA attention saves
    q, k, v and its output (Dao 2023; O(s) memory), eager attention the fp32 softmax
    and its 16-bit copy ((4 + 2) * heads * s bytes per token). Same bookkeeping as Korthikanti et al. 2022
    (34*s*b*h + 5*a*s^2*b for GPT-3 blocks), redone for Llama-style blocks, LoRA and GQA.
    """
    m = setup.model
    a = _half(setup)
    h = m.hidden_size
    q = m.num_attention_heads * m.head_dim
    kv = m.num_kv_heads * m.head_dim
    i = m.intermediate_size
    k = max(1, m.experts_per_token) if m.is_moe else 1
    full = setup.method == "full"
    s = setup.sequence_len

    # -- norms: RMSNorm upcasts its input to fp32 (saved for the variance backward);
    # LayerNorm runs in fp32 under autocast. Trainable norm weights also save the output.
    norm_in = FP32_BYTES if (stack.autocast or m.model_type not in LAYERNORM_TYPES) else a
    norms = _norms_per_layer(m) * (norm_in * h + (a * h if full else 0))

    # -- attention core
    flash_like = setup.attn_implementation in ("flash_attention_2", "sdpa")
    if flash_like:
        attn = a * (q + 2 * kv) + a * q  # q, k, v after rotary + the output (+ lse, tiny)
    else:
        # eager: q@k^T saves q and the head-expanded k (repeat_kv), probs@v the
        # 16-bit probabilities and expanded v; softmax(dtype=fp32) saves its fp32 output.
        attn = a * 3 * q + (FP32_BYTES + a) * m.num_attention_heads * s

    # -- MLP core: gated act(gate)*up saves gate, act(gate) and up; GELU saves its input.
    mlp = float(3 * a * i * k if m.mlp_gated else a * i * k)
    if m.is_moe:
        mlp += FP32_BYTES * m.num_experts  # router logits / softmax
        mlp += 3 * a * m.shared_expert_intermediate_size

    # -- inputs of linear layers, saved when something trainable reads them
    roles: dict[str, list[LinearShape]] = {}
    for ls in m.linears:
        roles.setdefault(_input_role(ls, m), []).append(ls)
    adapted = {id(ls) for ls in targeted_linears(m, setup.lora_targets)} if not full else set()
    inputs = 0.0
    for role, members in roles.items():
        width = max(ls.d_in for ls in members)
        if role.startswith("expert"):
            width *= k
        if full:
            if role == "attn_out" and setup.attn_implementation == "flash_attention_2":
                continue  # o_proj reads the (already saved) flash-attn output view
            # expert_in: the tokens permuted to their k experts, kept for the experts' grads
            inputs += a * width
            continue
        lora_members = [ls for ls in members if id(ls) in adapted]
        quantized_saves = stack.kbit_saves_input and setup.method == "qlora"
        if setup.lora_dropout > 0 and lora_members:
            # each adapter has its own nn.Dropout: 16-bit output (read by lora_A) + bool mask
            copies = 1 if (stack.fused_qkv_lora and role == "attn_in") else len(lora_members)
            inputs += copies * (a + DROPOUT_MASK_BYTES) * width
        elif lora_members and not (
            role == "attn_out" and setup.attn_implementation == "flash_attention_2"
        ):
            inputs += a * width  # lora_A saves the shared input
        if quantized_saves and not (lora_members and setup.lora_dropout == 0):
            inputs += a * width  # old bitsandbytes MatMul4Bit kept its input
    saved = norms + attn + mlp + inputs
    # Backward transients of the layer being differentiated: the incoming gradient,
    # gradients of the MLP intermediates and of q/k/v (flash-attn backward also keeps
    # an fp32 dq accumulator).
    transient = a * (h + 2 * i * k + q + 2 * kv) + FP32_BYTES * q
    return saved, transient


def activations(setup: TrainSetup, stack: Stack = AXOLOTL) -> _Activations:
    """Activation memory: what the forward pass saves for backward, per GPU.

    Never sharded by ZeRO/FSDP. Sample packing fills every micro batch to sequence_len,
    which is also the worst case without packing, so tokens = micro_batch * sequence_len.
    """
    m = setup.model
    a = _half(setup)
    tokens = setup.micro_batch_size * setup.sequence_len
    layer, transient = _layer_bytes_per_token(setup, stack)
    notes: list[str] = []
    full = setup.method == "full"

    if setup.gradient_checkpointing:
        # Non-reentrant checkpointing (Axolotl's default use_reentrant: false) keeps each
        # block's input hidden state; backward recomputes one block at a time.
        saved = float(m.num_layers * a * m.hidden_size * tokens)
        working = (layer + transient) * tokens
    else:
        saved = m.num_layers * layer * tokens * NO_CHECKPOINTING_SAVED_FACTOR
        working = transient * tokens
    # Model-level: the final norm's fp32 input, and lm_head's input when it is trained.
    lm_head_trained = full or any(
        n.split(".")[-1] in _OUTPUT_HEAD_NAMES for n in setup.lora_modules_to_save
    )
    saved += tokens * (FP32_BYTES * m.hidden_size + (a * m.hidden_size if lm_head_trained else 0))
    # A materialised attention mask, shared by all layers: transformers builds a
    # (b, 1, s, s) mask for sdpa (bool) when there is padding or packing, and a float
    # mask for eager. Flash-attention takes sequence boundaries instead.
    if setup.attn_implementation == "sdpa":
        saved += setup.micro_batch_size * setup.sequence_len**2 * 1
    elif setup.attn_implementation == "eager":
        saved += setup.micro_batch_size * setup.sequence_len**2 * a
        notes.append("eager attention stores the s x s attention probabilities per layer")
    return _Activations(saved=saved, working=working, notes=tuple(notes))


def logits_bytes(setup: TrainSetup, stack: Stack = AXOLOTL) -> float:
    """The loss over the vocabulary at its peak: b*s*V elements times Stack.logits_bytes,
    or a hidden-sized chunk when a fused linear cross-entropy is on."""
    m = setup.model
    tokens = setup.micro_batch_size * setup.sequence_len
    if setup.fused_cross_entropy:
        chunk = FUSED_CE_HIDDEN_COPIES * _half(setup) * m.hidden_size * tokens
        head_trained = setup.method == "full" or any(
            n.split(".")[-1] in _OUTPUT_HEAD_NAMES for n in setup.lora_modules_to_save
        )
        # Liger computes lm_head's weight gradient in the forward pass, in fp32.
        return chunk + (FP32_BYTES * m.vocab_size * m.hidden_size if head_trained else 0)
    per = stack.logits_bytes_deepspeed if _deepspeed(setup) else stack.logits_bytes
    if not stack.autocast:
        per = stack.logits_bytes
    return tokens * m.vocab_size * per


# =========================================================================== overhead
@dataclass(frozen=True)
class _Overhead:
    comm: float  # torch-allocated communication / gather buffers (seen by max_allocated)
    external: float  # CUDA context + NCCL buffers (not torch allocations)
    notes: tuple[str, ...]


def overhead(setup: TrainSetup, state: _State, stack: Stack = AXOLOTL) -> _Overhead:
    """Fixed costs: context, communication buckets and gathered-layer buffers."""
    m = setup.model
    half = _half(setup)
    n = _ranks(setup)
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
        comm += max(_block_params(m), m.vocab_size * m.hidden_size) * half
    elif d == "fsdp" and n > 1:
        # The block running and the one prefetched are unsharded; the root module
        # (embeddings, lm_head, final norm) is not resharded after forward in FSDP2;
        # one block's unsharded gradient waits for its reduce-scatter.
        comm += 2 * _block_params(m) * half
        comm += m.embedding_params * half * (1 - 1 / n)
        comm += _block_params(m) * half
    return _Overhead(comm=comm, external=external, notes=tuple(notes))


# =========================================================================== estimate
def estimate(setup: TrainSetup, stack: Stack = AXOLOTL) -> MemoryBreakdown:
    """Predicted peak memory per GPU (GiB) for `setup`, with its components.

    total = max_memory_reserved + CUDA context, i.e. what nvidia-smi shows for the
    process; `allocated_gib` is the max_memory_allocated part.
    """
    w = weights(setup, stack)
    st = trainable_state(setup, stack)
    act = activations(setup, stack)
    logit = logits_bytes(setup, stack)
    ov = overhead(setup, st, stack)

    # Activation phase: saved activations, plus the larger of the loss buffers and the
    # layer recompute working set (they are alive at different moments of backward).
    act_phase = act.saved + max(logit, act.working)
    step_phase = st.step_temp
    dynamic = max(act_phase, step_phase)

    activations_b = act.saved + max(0.0, act.working - logit)
    logits_b = logit
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
        host_gib=(w.host + st.host) / GIB,
    )


def reserved_gib(est: MemoryBreakdown, setup: TrainSetup) -> float:
    """The part of `est.total_gib` that torch.cuda.max_memory_reserved would report:
    the total less the CUDA context and NCCL's own buffers (what the plugin measures)."""
    external = CUDA_CONTEXT_GIB
    if setup.num_gpus > 1 and setup.distributed != "none":
        external += NCCL_BUFFERS_GIB
    return est.total_gib - external
