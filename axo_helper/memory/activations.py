"""Activation memory (what the forward pass saves for backward) and the loss buffers
over the vocabulary, per GPU."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import (
    DROPOUT_MASK_BYTES,
    FP32_BYTES,
    FUSED_CE_HIDDEN_COPIES,
    LAYERNORM_TYPES,
    NO_CHECKPOINTING_SAVED_FACTOR,
    PARALLEL_BLOCK_TYPES,
    PARAM_WRAPPER_WEIGHT_COPIES,
)
from axo_helper.memory.params import (
    OUTPUT_HEAD_NAMES,
    norms_per_layer,
    targeted_linears,
    wrapped_weight_elements,
)
from axo_helper.memory.sharding import element_bytes, is_deepspeed
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.specs import LinearShape, ModelSpec, TrainSetup

# Module names that read the same tensor inside a block (see _input_role). Knowing it
# matters for activations: a LoRA adapter saves its (dropped-out) input for backward.
_ATTN_IN = ("q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value", "wqkv")
_MLP_IN = ("gate_proj", "up_proj", "gate_up_proj", "w1", "w2", "fc1", "c_fc", "h_to_4h", "gate")
_ATTN_OUT = ("o_proj", "out_proj", "dense")  # c_proj: by width, see _input_role
_MLP_OUT = ("down_proj", "fc2", "4h_to_h", "w3")


@dataclass(frozen=True)
class ActivationBytes:
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
    a = element_bytes(setup)
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
    norms = norms_per_layer(m) * (norm_in * h + (a * h if full else 0))

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

    inputs = _linear_inputs(setup, stack, a, k)
    saved = norms + attn + mlp + inputs
    # Backward transients of the layer being differentiated: the incoming gradient,
    # gradients of the MLP intermediates and of q/k/v (flash-attn backward also keeps
    # an fp32 dq accumulator).
    transient = a * (h + 2 * i * k + q + 2 * kv) + FP32_BYTES * q
    return saved, transient


def _linear_inputs(setup: TrainSetup, stack: Stack, a: int, k: int) -> float:
    """Bytes per token of the inputs of one block's linear layers, saved when something
    trainable reads them (`a`: bytes per element, `k`: experts per token)."""
    m = setup.model
    full = setup.method == "full"
    roles: dict[str, list[LinearShape]] = {}
    for ls in m.linears:
        roles.setdefault(_input_role(ls, m), []).append(ls)
    adapted = (
        set()
        if full
        else {
            id(ls) for ls in targeted_linears(m, setup.lora_targets, setup.lora_target_parameters)
        }
    )
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
    return inputs


def activations(setup: TrainSetup, stack: Stack = AXOLOTL) -> ActivationBytes:
    """Activation memory: what the forward pass saves for backward, per GPU.

    Never sharded by ZeRO/FSDP. Sample packing fills every micro batch to sequence_len,
    which is also the worst case without packing, so tokens = micro_batch * sequence_len.
    """
    m = setup.model
    a = element_bytes(setup)
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
    wrapped_saved, wrapped_working = _wrapped_weight_bytes(setup, stack)
    saved += wrapped_saved
    working += wrapped_working
    if wrapped_working:
        notes.append(
            "lora_target_parameters: PEFT rebuilds each wrapped expert tensor (W + B@A) "
            "in full per block, counted in the working memory"
        )
    # Model-level: the final norm's fp32 input, and lm_head's input when it is trained.
    lm_head_trained = full or any(
        n.split(".")[-1] in OUTPUT_HEAD_NAMES for n in setup.lora_modules_to_save
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
    return ActivationBytes(saved=saved, working=working, notes=tuple(notes))


def _wrapped_weight_bytes(setup: TrainSetup, stack: Stack) -> tuple[float, float]:
    """(saved, working) bytes of the full-size tensors PEFT's ParamWrapper builds for
    lora_target_parameters; they do not scale with tokens (see PARAM_WRAPPER_WEIGHT_COPIES)."""
    elements = wrapped_weight_elements(setup)
    if not elements:
        return 0.0, 0.0
    a = element_bytes(setup)
    delta = max(stack.adapter_bytes, a) * elements
    # quantize_moe_experts: the 4-bit experts are dequantized to W before B@A is added.
    dequant = a * elements if setup.quantize_moe_experts else 0
    if setup.gradient_checkpointing:
        return 0.0, float(PARAM_WRAPPER_WEIGHT_COPIES * a * elements + delta + dequant)
    # Without checkpointing every block keeps its W + B@A until backward.
    return float(setup.model.num_layers * a * elements), float(a * elements + delta + dequant)


def logits_bytes(setup: TrainSetup, stack: Stack = AXOLOTL) -> float:
    """The loss over the vocabulary at its peak: b*s*V elements times Stack.logits_bytes,
    or a hidden-sized chunk when a fused linear cross-entropy is on."""
    m = setup.model
    tokens = setup.micro_batch_size * setup.sequence_len
    if setup.fused_cross_entropy:
        chunk = FUSED_CE_HIDDEN_COPIES * element_bytes(setup) * m.hidden_size * tokens
        head_trained = setup.method == "full" or any(
            n.split(".")[-1] in OUTPUT_HEAD_NAMES for n in setup.lora_modules_to_save
        )
        # Liger computes lm_head's weight gradient in the forward pass, in fp32.
        return chunk + (FP32_BYTES * m.vocab_size * m.hidden_size if head_trained else 0)
    per = stack.logits_bytes_deepspeed if is_deepspeed(setup) else stack.logits_bytes
    if not stack.autocast:
        per = stack.logits_bytes
    return tokens * m.vocab_size * per
