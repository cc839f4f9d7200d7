"""Activation memory (what the forward pass saves for backward) and the loss buffers
over the vocabulary, per GPU."""

from __future__ import annotations

from dataclasses import dataclass

from axo_helper.memory.constants import (
    ACTIVATION_OFFLOAD_RESIDENT,
    DROPOUT_MASK_BYTES,
    FP32_BYTES,
    FP32_NORM_OUTPUT_TYPES,
    FUSED_CE_HIDDEN_COPIES,
    LAYERNORM_TYPES,
    PARALLEL_BLOCK_TYPES,
    PARAM_WRAPPER_WEIGHT_COPIES,
    QK_NORM_TYPES,
    SOFTCAP_TYPES,
)
from axo_helper.memory.freeze import graph_through_frozen
from axo_helper.memory.params import (
    OUTPUT_HEAD_NAMES,
    norms_per_layer,
    setup_lora_params,
    targeted_linears,
    wrapped_weight_elements,
)
from axo_helper.memory.sharding import element_bytes, is_deepspeed
from axo_helper.memory.stack import AXOLOTL, Stack
from axo_helper.memory.weights import full_embedding_bytes
from axo_helper.specs import FULL_WEIGHT_METHODS, LinearShape, ModelSpec, TrainSetup

# Module names that read the same tensor inside a block (see _input_role). Knowing it
# matters for activations: a LoRA adapter saves its (dropped-out) input for backward.
_ATTN_IN = ("q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value", "wqkv")
_MLP_IN = ("gate_proj", "up_proj", "gate_up_proj", "w1", "w2", "fc1", "c_fc", "h_to_4h", "gate")
_ATTN_OUT = ("o_proj", "out_proj", "dense")  # c_proj: by width, see _input_role
_MLP_OUT = ("down_proj", "fc2", "4h_to_h", "w3")
# One linear projecting q, k and v together (Phi-3, GPT-2, Falcon, Baichuan, MPT).
_FUSED_QKV = ("qkv_proj", "c_attn", "query_key_value", "wqkv", "Wqkv", "W_pack")


@dataclass(frozen=True)
class ActivationBytes:
    saved: float  # bytes saved for backward over all layers (+ model-level tensors)
    working: float  # one layer's recompute (GC) + backward transients
    notes: tuple[str, ...]
    host: float = 0.0  # saved block inputs waiting in host memory (activation offloading)


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


def _layer_bytes_per_token(
    setup: TrainSetup, stack: Stack, trained: bool = True
) -> tuple[float, float]:
    """(bytes saved for backward by one block, backward transients) per token.

    `trained` False: a frozen block of a partial fine-tune that still records a graph
    (the input gradient only: no weight saves its input, no norm its output).

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
    full = setup.method in FULL_WEIGHT_METHODS and trained
    s = setup.sequence_len

    # -- norms: RMSNorm upcasts its input to fp32 (saved for the variance backward);
    # LayerNorm runs in fp32 under autocast. Trainable norm weights also save the output.
    norm_in = FP32_BYTES if (stack.autocast or m.model_type not in LAYERNORM_TYPES) else a
    # The weight's gradient reads the normalised input: 16-bit in Llama-style norms
    # (weight * x.to(dtype)), fp32 in Gemma's (x * (1 + weight.float()), then cast).
    norm_out = FP32_BYTES if m.model_type in FP32_NORM_OUTPUT_TYPES else a
    norms = norms_per_layer(m) * (norm_in * h + (norm_out * h if full else 0))

    # -- attention core
    flash_like = setup.attn_implementation in ("flash_attention_2", "sdpa")
    if flash_like:
        attn = a * (q + 2 * kv) + a * q  # q, k, v after rotary + the output (+ lse, tiny)
    else:
        # eager: q@k^T saves q and the head-expanded k (repeat_kv), probs@v the
        # 16-bit probabilities and expanded v; softmax(dtype=fp32) saves its fp32 output.
        attn = a * 3 * q + (FP32_BYTES + a) * m.num_attention_heads * s
    if any(ls.name.split(".")[-1] in _FUSED_QKV for ls in m.linears):
        # q, k and v are views of one fused projection: saving v (or k before rotary)
        # keeps the whole output alive, beside the rotated copies of q and k (traced).
        attn += a * (q + kv)
    if m.model_type in QK_NORM_TYPES:
        # per-head RMSNorm of q and k (Qwen 3, Gemma 3, OLMo 2): their fp32 inputs,
        # and the normalised 16-bit input when the norm weights train
        attn += (FP32_BYTES + (a if full else 0)) * (q + kv)

    # -- MLP core: gated act(gate)*up saves gate, act(gate) and up; GELU saves its input.
    mlp = float(3 * a * i * k if m.mlp_gated else a * i * k)
    if m.is_moe:
        mlp += FP32_BYTES * m.num_experts  # router logits / softmax
        mlp += 3 * a * m.shared_expert_intermediate_size
        # the k experts' outputs, kept by the multiply with the (differentiable) routing
        # weights before they are summed (traced on Qwen3-MoE)
        mlp += a * h * k

    inputs = _linear_inputs(setup, stack, a, k) if trained else 0.0
    saved = norms + attn + mlp + inputs
    # Backward transients of the layer being differentiated: the incoming gradient,
    # gradients of the MLP intermediates and of q/k/v (flash-attn backward also keeps
    # an fp32 dq accumulator).
    transient = a * (h + 2 * i * k + q + 2 * kv) + FP32_BYTES * q
    if setup.method in ("lora", "qlora") and max(stack.adapter_bytes, a) != a:
        # fp32 adapters: the gradients flowing back through them are fp32 too, the
        # widest adapted input (down_proj's) and the block's width at once (traced)
        adapted = targeted_linears(m, setup.lora_targets, setup.lora_target_parameters)
        widest = max((ls.d_in for ls in adapted if "experts" not in ls.name), default=0)
        if widest:
            transient += FP32_BYTES * (widest + h)
    return saved, transient


def fp32_residual(setup: TrainSetup, stack: Stack) -> bool:
    """A full fine-tune that keeps Axolotl's fp32 embeddings and norms (sdpa/eager): the
    residual stream is fp32, and under autocast every linear that reads a norm's output
    saves its own 16-bit cast of it (the autocast cache keeps weights, not activations)."""
    return setup.method in FULL_WEIGHT_METHODS and full_embedding_bytes(setup, stack) == FP32_BYTES


def _largest_block_tensor(m: ModelSpec) -> int:
    """Elements of a block's largest weight tensor; transformers 5 stores MoE experts'
    gate and up projections as one fused (experts, 2*i, h) tensor."""
    single = max((ls.d_in * ls.d_out * ls.count for ls in m.linears), default=0)
    fused = sum(
        ls.d_in * ls.d_out * ls.count for ls in m.linears if _input_role(ls, m) == "expert_in"
    )
    return max(single, fused)


def _linear_inputs(setup: TrainSetup, stack: Stack, a: int, k: int) -> float:
    """Bytes per token of the inputs of one block's linear layers, saved when something
    trainable reads them (`a`: bytes per element, `k`: experts per token).

    A LoRA adapter in fp32 (PEFT's autocast_adapter_dtype) gets its input through
    PEFT's `_cast_input_dtype`, then autocast casts it back to 16-bit for lora_A's matmul:
    each adapter saves its own 16-bit copy, even when several read the same tensor.
    """
    m = setup.model
    full = setup.method in FULL_WEIGHT_METHODS
    cast_full = fp32_residual(setup, stack)
    per_adapter = max(stack.adapter_bytes, a) != a
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
            copies = len(members) if cast_full and role in ("attn_in", "mlp_in") else 1
            inputs += copies * a * width
            continue
        lora_members = [ls for ls in members if id(ls) in adapted]
        quantized_saves = stack.kbit_saves_input and setup.method == "qlora"
        if setup.lora_dropout > 0 and lora_members:
            # each adapter has its own nn.Dropout: 16-bit output (read by lora_A) + bool mask
            copies = 1 if (stack.fused_qkv_lora and role == "attn_in") else len(lora_members)
            inputs += copies * (a + DROPOUT_MASK_BYTES) * width
        elif lora_members and per_adapter:
            inputs += len(lora_members) * a * width  # each adapter's own 16-bit copy
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
    host = 0.0
    full = setup.method in FULL_WEIGHT_METHODS
    # Blocks that save for backward: all, or (freeze) the unfrozen ones, plus the frozen
    # ones when something before them needs a gradient (memory/freeze.py).
    layers = m.num_layers - setup.frozen_layers
    graph_frozen = setup.frozen_layers if graph_through_frozen(setup) else 0

    if setup.gradient_checkpointing:
        # Non-reentrant checkpointing (Axolotl's default use_reentrant: false) keeps each
        # block's input hidden state; backward recomputes one block at a time.
        hidden = FP32_BYTES if fp32_residual(setup, stack) else a
        kept = layers + graph_frozen
        if setup.activation_offloading:
            # the blocks' inputs wait in host memory; the last few stay (ACTIVATION_OFFLOAD_RESIDENT)
            resident = min(kept, ACTIVATION_OFFLOAD_RESIDENT)
            host = float((kept - resident) * hidden * m.hidden_size * tokens)
            kept = resident
            notes.append(
                "activation offloading: the blocks' saved inputs wait in pinned host "
                "memory; the last few stay on the GPU"
            )
        saved = float(kept * hidden * m.hidden_size * tokens)
        if setup.saves_attention:
            saved += (layers + graph_frozen) * tokens * saved_attention_bytes(m, a)
            notes.append(
                "selective checkpointing: each block's attention output and log-sum-exp "
                "are kept, so backward does not rerun the attention kernel"
            )
        working = (layer + transient) * tokens
    else:
        saved = layers * layer * tokens * stack.no_checkpointing_factor
        if graph_frozen:
            frozen_layer, _ = _layer_bytes_per_token(setup, stack, trained=False)
            saved += graph_frozen * frozen_layer * tokens * stack.no_checkpointing_factor
        working = transient * tokens
    if full:
        # A block weight's new gradient exists before autograd adds it into .grad (under
        # gradient accumulation both are alive): large for fused MoE expert tensors.
        working += a * _largest_block_tensor(m)
    if setup.method in ("lora", "qlora") and stack.autocast and max(stack.adapter_bytes, a) != a:
        # autocast's 16-bit copies of the fp32 adapter weights, cached for the whole
        # forward and saved for backward (traced: r x (d_in + d_out) x 2 bytes a linear)
        saved += float(a * setup_lora_params(setup))
    wrapped_saved, wrapped_working = _wrapped_weight_bytes(setup, stack)
    saved += wrapped_saved
    working += wrapped_working
    if wrapped_working:
        notes.append(
            "lora_target_parameters: PEFT rebuilds each wrapped expert tensor (W + B@A) "
            "in full per block, counted in the working memory"
        )
    # Model-level: the final norm's fp32 input, and lm_head's input when it is trained
    # (freeze: the trained final norm saves the same tensor for its weight gradient).
    lm_head_trained = full or _head_trained(setup)
    saved += tokens * (FP32_BYTES * m.hidden_size + (a * m.hidden_size if lm_head_trained else 0))
    # A materialised attention mask, shared by all layers: transformers builds a
    # (b, 1, s, s) mask for sdpa (bool) when there is padding or packing, and a float
    # mask for eager. Flash-attention takes sequence boundaries instead.
    if setup.attn_implementation == "sdpa":
        saved += setup.micro_batch_size * setup.sequence_len**2 * 1
    elif setup.attn_implementation == "eager":
        saved += setup.micro_batch_size * setup.sequence_len**2 * a
        notes.append("eager attention stores the s x s attention probabilities per layer")
    return ActivationBytes(saved=saved, working=working, notes=tuple(notes), host=host)


def saved_attention_bytes(m: ModelSpec, a: int) -> float:
    """Per token and block, what selective checkpointing keeps of the attention kernel
    (Axolotl's `save: [attention]`, the SDPA / flash forward op's outputs): the output,
    heads x head_dim 16-bit values, and the fp32 log-sum-exp per head."""
    return float(m.num_attention_heads * (m.head_dim * a + FP32_BYTES))


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
        head_trained = _head_trained(setup)
        # Liger computes lm_head's weight gradient in the forward pass, in fp32.
        return chunk + (FP32_BYTES * m.vocab_size * m.hidden_size if head_trained else 0)
    per = stack.logits_bytes_deepspeed if is_deepspeed(setup) else stack.logits_bytes
    if not stack.autocast:
        per = stack.logits_bytes
    a = element_bytes(setup)
    if m.model_type in SOFTCAP_TYPES:
        per += a  # tanh(logits / cap) * cap: tanh saves its 16-bit output
    head = m.vocab_size * m.hidden_size
    head_cast = 0.0
    if stack.autocast and fp32_residual(setup, stack):
        # autocast's 16-bit copy of the fp32 lm_head weight, saved for its backward
        head_cast = float(a * head)
    loss_peak = tokens * m.vocab_size * per + head_cast
    if not _head_trained(setup):
        return loss_peak
    # The head's backward: the 16-bit gradient of the logits, and the new weight gradient
    # before autograd adds it into .grad (under gradient accumulation both are alive).
    # An fp32 head: autocast's 16-bit copy is released once the head's backward has made
    # the 16-bit weight gradient, which then becomes the fp32 one (traced).
    grad_new = a * head + max(head_cast, FP32_BYTES * head if head_cast else 0.0)
    return max(loss_peak, tokens * m.vocab_size * a + grad_new)


def embedding_backward_bytes(setup: TrainSetup, stack: Stack = AXOLOTL) -> float:
    """The end of backward of a trained, tied head: autograd sums the head's gradient
    and the dense embedding gradient before .grad, three V x h tensors at once, when the
    blocks' saved activations are already freed (so it is a phase of its own)."""
    m = setup.model
    if not (m.tie_word_embeddings and _head_trained(setup)):
        return 0.0
    g = FP32_BYTES if fp32_residual(setup, stack) else element_bytes(setup)
    return float(3 * g * m.vocab_size * m.hidden_size)


def _head_trained(setup: TrainSetup) -> bool:
    if setup.method == "freeze":
        return setup.train_head
    return setup.method == "full" or any(
        n.split(".")[-1] in OUTPUT_HEAD_NAMES for n in setup.lora_modules_to_save
    )
