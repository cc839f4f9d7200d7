"""Model weights on each GPU: the base (16-bit, k-bit or with fp32 parts) and LoRA
adapter copies, sharded by ZeRO-3/FSDP, and the loading peak of k-bit models."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import (
    FP32_BYTES,
    HALF_BYTES,
    INT8_BYTES_PER_PARAM,
    NF4_DQ_BYTES_PER_PARAM,
)
from axo_helper.memory.params import modules_to_save_params, norms_per_layer, setup_lora_params
from axo_helper.memory.sharding import element_bytes, is_deepspeed, ranks, shards_params
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.specs import FULL_WEIGHT_METHODS, TrainSetup


@dataclass(frozen=True)
class WeightBytes:
    gpu: float  # bytes resident on each GPU for the whole run
    host: float  # bytes offloaded to host RAM
    load_peak: float  # bytes at the end of loading (k-bit fp32 upcast), before training
    notes: tuple[str, ...]


def _quant_bytes(stack: Stack) -> float:
    return stack.quant_bytes if stack.quant_bytes is not None else NF4_DQ_BYTES_PER_PARAM


def weights(setup: TrainSetup, stack: Stack = AXOLOTL) -> WeightBytes:
    """Model weights on each GPU: the base (frozen or trained) and LoRA adapter copies.

    Gradients, optimizer state and fp32 master copies are trainable state, not here.
    """
    notes: list[str] = []
    kbit = setup.method == "qlora" or (setup.method == "lora" and setup.load_in_8bit)
    base: float
    load_peak: float
    if setup.method in FULL_WEIGHT_METHODS:
        # freeze: the loader treats it as a full fine-tune (no adapter), same dtypes.
        base, load_peak = _full_base(setup, stack, notes)
    elif kbit:
        base, load_peak = _kbit_base(setup, stack, notes)
    else:
        base = setup.model.total_params * element_bytes(setup)
        load_peak = base
    adapters = _adapters(setup, stack, notes) if setup.method not in FULL_WEIGHT_METHODS else 0.0

    gpu = base
    host = 0.0
    n = ranks(setup)
    if shards_params(setup):
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
            # The shards are loaded into host memory (ZeRO-3 zero.Init with offload_param,
            # FSDP cpu_ram_efficient_loading): no loading peak on the GPU.
            load_peak = 0.0
            notes.append("parameters offloaded to host RAM (ZeRO-3 offload_param / FSDP offload)")
    return WeightBytes(
        gpu=gpu + adapters, host=host, load_peak=load_peak + adapters, notes=tuple(notes)
    )


def _full_base(setup: TrainSetup, stack: Stack, notes: list[str]) -> tuple[float, float]:
    """(base bytes, load peak) of a full fine-tune: every weight trained in its dtype."""
    m = setup.model
    half = element_bytes(setup)
    emb = m.embedding_params
    base = (m.total_params - emb) * half + emb * full_embedding_bytes(setup, stack)
    if full_embedding_bytes(setup, stack) == FP32_BYTES and half == HALF_BYTES:
        notes.append(
            "full fine-tune with sdpa/eager attention: Axolotl keeps embed_tokens and "
            "lm_head in fp32 (flash_attention_2 or FSDP casts them back to 16-bit)"
        )
    if setup.precision == "fp16" and not is_deepspeed(setup):
        notes.append(
            "fp16 full fine-tune: Axolotl loads fp16 weights, which the HF GradScaler "
            "refuses to unscale; use bf16, fp32 or DeepSpeed"
        )
    return base, base


def _kbit_base(setup: TrainSetup, stack: Stack, notes: list[str]) -> tuple[float, float]:
    """(base bytes, load peak) of a 4-bit (QLoRA) or 8-bit (LoRA) quantized base."""
    m = setup.model
    half = element_bytes(setup)
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
    norms = (m.num_layers * norms_per_layer(m) + 1) * m.hidden_size
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
    return base, load_peak


def _adapters(setup: TrainSetup, stack: Stack, notes: list[str]) -> float:
    """LoRA adapters and modules_to_save copies (their optimizer state is trainable state)."""
    m = setup.model
    half = element_bytes(setup)
    n_lora = setup_lora_params(setup)
    # DeepSpeed casts the whole module to 16-bit (its fp32 master lives in the optimizer).
    adapter_bytes = half if is_deepspeed(setup) else max(stack.adapter_bytes, half)
    saved, unknown = modules_to_save_params(m, setup.lora_modules_to_save)
    # PEFT deep-copies modules_to_save in the base dtype; cast_adapter_dtype only
    # upcasts LoRA layers (BaseTunerLayer), not ModulesToSaveWrapper.
    adapters = n_lora * adapter_bytes + saved * half
    if unknown:
        notes.append(f"lora_modules_to_save {', '.join(unknown)}: size unknown, not counted")
    if n_lora == 0 and not saved:
        notes.append("lora_target_modules match no linear layer of this model")
    return float(adapters)


def full_embedding_bytes(setup: TrainSetup, stack: Stack) -> int:
    """Axolotl's fp32 embed_tokens/lm_head in a full fine-tune (see Stack)."""
    if (
        stack.fp32_embeddings_full_ft
        and setup.method in FULL_WEIGHT_METHODS
        and setup.distributed in ("none", "ddp")
        and setup.attn_implementation in ("sdpa", "eager")
    ):
        return FP32_BYTES
    return element_bytes(setup)
