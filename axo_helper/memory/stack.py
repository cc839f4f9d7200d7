"""`Stack`: how a training framework stores things, where frameworks differ.

`AXOLOTL` is what estimate() models by default; the other stacks exist so that
benchmarks/estimator_error.py can compare against numbers published for other software.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from axo_helper.memory.constants import (
    DS_AXOLOTL_SUB_GROUP,
    DS_DEFAULT_REDUCE_BUCKET,
    FP32_BYTES,
    NO_CHECKPOINTING_SAVED_FACTOR,
)


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
    # Bytes saved per block without checkpointing, as a multiple of the tensors named op
    # by op (constants.NO_CHECKPOINTING_SAVED_FACTOR: 1.0 on Axolotl, traced).
    no_checkpointing_factor: float = NO_CHECKPOINTING_SAVED_FACTOR


AXOLOTL = Stack(name="axolotl")
