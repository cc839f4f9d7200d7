"""Parameter counting per architecture family: the linears of one block (with the
module names PEFT and Axolotl use), norms, biases and MoE experts.

The names follow the transformers version Axolotl 0.19 runs on (5.x): MoE experts are
fused 3D tensors there, not nn.Linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from axo_helper.errors import ModelError
from axo_helper.model.config import Config, Dims
from axo_helper.specs import LinearShape


@dataclass(frozen=True)
class _Traits:
    """What varies between Llama-style decoders (q/k/v/o + gate/up/down)."""

    qkv_bias: bool | None = False  # None: read config attention_bias (llama, qwen3, granite)
    o_bias: bool | None = False  # None: same as attention_bias
    mlp_bias: bool | None = False  # None: read config mlp_bias (llama, granite)
    norms_per_layer: int = 2  # RMSNorm weight vectors of hidden size per block
    qk_norm: bool = False  # per-head RMSNorm on q and k (qwen3, gemma3)
    tie_default: bool = False  # the config class default for tie_word_embeddings


_LLAMA_STYLE: dict[str, _Traits] = {
    "llama": _Traits(qkv_bias=None, o_bias=None, mlp_bias=None),
    "granite": _Traits(qkv_bias=None, o_bias=None, mlp_bias=None),
    "mistral": _Traits(),
    "qwen2": _Traits(qkv_bias=True),
    "qwen3": _Traits(qkv_bias=None, o_bias=None, qk_norm=True),
    "gemma": _Traits(tie_default=True),
    "gemma2": _Traits(norms_per_layer=4, tie_default=True),
    "gemma3_text": _Traits(norms_per_layer=4, qk_norm=True, tie_default=True),
}
_MOE = {"mixtral", "qwen2_moe", "qwen3_moe"}
_OTHER = {"phi3", "phi", "qwen", "gpt_neox", "gpt2"}
KNOWN_MODEL_TYPES = frozenset(_LLAMA_STYLE) | _MOE | _OTHER

_TIE_DEFAULT = {
    "mixtral": False,
    "qwen2_moe": False,
    "qwen3_moe": False,
    "phi3": False,
    "phi": False,
    "qwen": False,
    "gpt_neox": False,
    "gpt2": True,
}


# --------------------------------------------------------------------------- block layout
@dataclass
class _Block:
    """The linears of one transformer block plus the small parameters beside them."""

    linears: list[LinearShape] = field(default_factory=list)
    extra: int = 0  # norms and biases per block
    inactive: int = 0  # MoE: expert parameters a token does not use, per block

    def linear(
        self,
        name: str,
        d_in: int,
        d_out: int,
        *,
        bias: bool = False,
        count: int = 1,
        nn_linear: bool = True,
    ) -> None:
        self.linears.append(LinearShape(name, d_in, d_out, count, nn_linear=nn_linear))
        if bias:
            self.extra += d_out * count

    def norm(self, size: int, n: int = 1, *, bias: bool = False) -> None:
        self.extra += n * size * (2 if bias else 1)

    @property
    def params(self) -> int:
        return sum(ls.d_in * ls.d_out * ls.count for ls in self.linears) + self.extra


@dataclass
class Layout:
    block: _Block
    intermediate_size: int  # width of one MLP matrix (per expert for MoE)
    mlp_gated: bool = True
    model_extra: int = 0  # final norm, learned positions, lm_head bias
    notes: list[str] = field(default_factory=list)


def _attention_qkvo(block: _Block, d: Dims, *, qkv_bias: bool, o_bias: bool) -> None:
    block.linear("q_proj", d.hidden, d.q_out, bias=qkv_bias)
    block.linear("k_proj", d.hidden, d.kv_out, bias=qkv_bias)
    block.linear("v_proj", d.hidden, d.kv_out, bias=qkv_bias)
    block.linear("o_proj", d.q_out, d.hidden, bias=o_bias)


def _swiglu(block: _Block, hidden: int, inter: int, *, bias: bool = False) -> None:
    block.linear("gate_proj", hidden, inter, bias=bias)
    block.linear("up_proj", hidden, inter, bias=bias)
    block.linear("down_proj", inter, hidden, bias=bias)


def _llama_style(cfg: Config, model_type: str, d: Dims) -> Layout:
    t = _LLAMA_STYLE[model_type]
    attention_bias = cfg.flag("attention_bias", False)
    qkv_bias = attention_bias if t.qkv_bias is None else t.qkv_bias
    o_bias = attention_bias if t.o_bias is None else t.o_bias
    mlp_bias = cfg.flag("mlp_bias", False) if t.mlp_bias is None else t.mlp_bias
    inter = cfg.integer("intermediate_size")
    block = _Block()
    _attention_qkvo(block, d, qkv_bias=qkv_bias, o_bias=o_bias)
    _swiglu(block, d.hidden, inter, bias=mlp_bias)
    block.norm(d.hidden, t.norms_per_layer)
    if t.qk_norm:
        block.norm(d.head_dim, 2)
    return Layout(block, inter, model_extra=d.hidden)


def _moe(cfg: Config, model_type: str, d: Dims) -> Layout:
    """Mixtral / Qwen-MoE blocks as transformers 5 builds them (fused expert tensors)."""
    block = _Block()
    notes: list[str] = []
    if model_type == "mixtral":
        experts = cfg.integer("num_local_experts")
        width = cfg.integer("intermediate_size")
        _attention_qkvo(block, d, qkv_bias=False, o_bias=False)
        shared = 0
    else:
        experts = cfg.integer(_qwen_experts_key(cfg) or "num_experts")
        width = cfg.integer("moe_intermediate_size")
        qkv_bias = model_type == "qwen2_moe" or cfg.flag("attention_bias", False)
        o_bias = model_type != "qwen2_moe" and cfg.flag("attention_bias", False)
        _attention_qkvo(block, d, qkv_bias=qkv_bias, o_bias=o_bias)
        if model_type == "qwen3_moe":
            block.norm(d.head_dim, 2)
        shared = cfg.integer("shared_expert_intermediate_size") if model_type == "qwen2_moe" else 0
        if cfg.raw.get("mlp_only_layers") or cfg.raw.get("decoder_sparse_step", 1) != 1:
            notes.append(
                "some layers use a dense MLP (mlp_only_layers / decoder_sparse_step); "
                "every layer is counted as MoE, so parameters are approximate"
            )
    top_k = _top_k(cfg, experts)
    # Router and experts are bare Parameters in transformers>=5: LoRA all-linear skips them.
    block.linear("gate", d.hidden, experts, nn_linear=False)
    block.linear("experts.gate_up_proj", d.hidden, 2 * width, count=experts, nn_linear=False)
    block.linear("experts.down_proj", width, d.hidden, count=experts, nn_linear=False)
    if shared:
        _swiglu(block, d.hidden, shared)  # mlp.shared_expert.{gate,up,down}_proj
        block.linear("shared_expert_gate", d.hidden, 1)
    block.norm(d.hidden, 2)
    block.inactive = max(0, experts - top_k) * 3 * d.hidden * width
    notes.append(
        f"MoE: {experts} experts, {top_k} active per token; expert weights are fused 3D "
        "tensors in transformers>=5, so LoRA all-linear adapts attention"
        + (" and the shared expert" if shared else "")
        + " only and QLoRA leaves experts in 16-bit unless quantize_moe_experts is set"
    )
    return Layout(block, width, model_extra=d.hidden, notes=notes)


def _phi3(cfg: Config, d: Dims) -> Layout:
    inter = cfg.integer("intermediate_size")
    block = _Block()
    block.linear("qkv_proj", d.hidden, d.q_out + 2 * d.kv_out)
    block.linear("o_proj", d.q_out, d.hidden)
    block.linear("gate_up_proj", d.hidden, 2 * inter)
    block.linear("down_proj", inter, d.hidden)
    block.norm(d.hidden, 2)
    return Layout(block, inter, model_extra=d.hidden)


def _phi(cfg: Config, d: Dims, vocab: int) -> Layout:
    """phi-1, phi-1_5, phi-2: parallel attention + GELU MLP, biases and LayerNorm."""
    inter = cfg.integer("intermediate_size", 4 * d.hidden)
    block = _Block()
    block.linear("q_proj", d.hidden, d.q_out, bias=True)
    block.linear("k_proj", d.hidden, d.kv_out, bias=True)
    block.linear("v_proj", d.hidden, d.kv_out, bias=True)
    block.linear("dense", d.q_out, d.hidden, bias=True)
    block.linear("fc1", d.hidden, inter, bias=True)
    block.linear("fc2", inter, d.hidden, bias=True)
    block.norm(d.hidden, 1, bias=True)  # one shared LayerNorm per block
    # final LayerNorm + the lm_head bias
    return Layout(block, inter, mlp_gated=False, model_extra=2 * d.hidden + vocab)


def _qwen1(cfg: Config, d: Dims) -> Layout:
    """Qwen-1 (remote code, model_type "qwen"): fused c_attn, w1/w2 gated MLP."""
    # config intermediate_size is twice the width of each of w1 and w2.
    width = cfg.integer("intermediate_size") // 2
    block = _Block()
    block.linear("c_attn", d.hidden, 3 * d.q_out, bias=True)
    block.linear("c_proj", d.q_out, d.hidden)
    block.linear("w1", d.hidden, width)
    block.linear("w2", d.hidden, width)
    block.linear("c_proj", width, d.hidden)  # mlp.c_proj: LoRA "c_proj" hits both
    block.norm(d.hidden, 2)
    notes = [
        "Qwen-1 needs trust_remote_code; its MLP width is intermediate_size/2 "
        f"({width}); target c_attn, c_proj, w1, w2 for LoRA"
    ]
    return Layout(block, width, model_extra=d.hidden, notes=notes)


def _gpt_neox(cfg: Config, d: Dims) -> Layout:
    inter = cfg.integer("intermediate_size", 4 * d.hidden)
    bias = cfg.flag("attention_bias", True)
    block = _Block()
    block.linear("query_key_value", d.hidden, 3 * d.q_out, bias=bias)
    block.linear("dense", d.q_out, d.hidden, bias=bias)
    block.linear("dense_h_to_4h", d.hidden, inter, bias=True)
    block.linear("dense_4h_to_h", inter, d.hidden, bias=True)
    block.norm(d.hidden, 2, bias=True)
    return Layout(block, inter, mlp_gated=False, model_extra=2 * d.hidden)


def _gpt2(cfg: Config, d: Dims, positions: int) -> Layout:
    inter = cfg.integer("n_inner", 4 * d.hidden)
    block = _Block()
    block.linear("c_attn", d.hidden, 3 * d.hidden, bias=True)
    block.linear("c_proj", d.hidden, d.hidden, bias=True)
    block.linear("c_fc", d.hidden, inter, bias=True)
    block.linear("c_proj", inter, d.hidden, bias=True)
    block.norm(d.hidden, 2, bias=True)
    # learned position embeddings + final LayerNorm
    return Layout(block, inter, mlp_gated=False, model_extra=positions * d.hidden + 2 * d.hidden)


def _generic(cfg: Config, model_type: str, arch: str, d: Dims) -> Layout:
    """Unknown architecture: a Llama-like guess from the generic fields, said so."""
    block = _Block()
    _attention_qkvo(block, d, qkv_bias=False, o_bias=False)
    if cfg.get("intermediate_size") is not None:
        inter = cfg.integer("intermediate_size")
        _swiglu(block, d.hidden, inter)
        gated = True
    else:  # OPT says ffn_dim, GPT-2-likes n_inner; else the classic 4 x hidden
        key = "ffn_dim" if cfg.get("ffn_dim") is not None else "n_inner"
        inter = cfg.integer(key, 4 * d.hidden)
        block.linear("fc1", d.hidden, inter)
        block.linear("fc2", inter, d.hidden)
        gated = False
    block.norm(d.hidden, 2)
    what = f"{arch or 'no architectures'} (model_type {model_type or 'missing'})"
    notes = [
        f"unknown architecture {what}: sizes come from the generic config.json fields "
        f"({'intermediate_size' if gated else f'MLP width {inter}'}); module names and the "
        "parameter count are a Llama-style estimate"
    ]
    return Layout(block, inter, mlp_gated=gated, model_extra=d.hidden, notes=notes)


def _qwen_experts_key(cfg: Config) -> str | None:
    """Where a Qwen MoE config.json holds its expert count: the hub's files say
    num_experts; transformers 5 saves the same value as num_local_experts."""
    return next((k for k in ("num_experts", "num_local_experts") if cfg.get(k) is not None), None)


def missing_fields(cfg: Config, model_type: str) -> list[str]:
    """The config.json fields this family needs that the file lacks."""
    missing = [
        key
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
        if cfg.get(key) is None
    ]
    if model_type == "mixtral":
        missing += [k for k in ("num_local_experts", "num_experts_per_tok") if cfg.get(k) is None]
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        moe_keys = ["num_experts_per_tok", "moe_intermediate_size"]
        if model_type == "qwen2_moe":
            moe_keys.append("shared_expert_intermediate_size")
        missing += [k for k in moe_keys if cfg.get(k) is None]
        if _qwen_experts_key(cfg) is None:
            missing.append("num_experts")
    if (model_type in _LLAMA_STYLE or model_type in {"mixtral", "phi3", "qwen"}) and cfg.get(
        "intermediate_size"
    ) is None:
        missing.append("intermediate_size")
    return missing


def layout_for(
    cfg: Config, model_type: str, archs: list[str], d: Dims, vocab: int, positions: int
) -> tuple[Layout, bool]:
    """The block layout of the family, and whether it is the generic (unknown) guess."""
    if model_type in _LLAMA_STYLE:
        return _llama_style(cfg, model_type, d), False
    if model_type in _MOE:
        return _moe(cfg, model_type, d), False
    if model_type == "phi3":
        return _phi3(cfg, d), False
    if model_type == "phi":
        return _phi(cfg, d, vocab), False
    if model_type == "qwen":
        return _qwen1(cfg, d), False
    if model_type == "gpt_neox":
        return _gpt_neox(cfg, d), False
    if model_type == "gpt2":
        return _gpt2(cfg, d, positions), False
    return _generic(cfg, model_type, archs[0] if archs else "", d), True


def tie_default(model_type: str) -> bool:
    """tie_word_embeddings when config.json leaves it out: the config class default."""
    if model_type in _LLAMA_STYLE:
        return _LLAMA_STYLE[model_type].tie_default
    return _TIE_DEFAULT.get(model_type, True)  # PretrainedConfig's own default is True


def _top_k(cfg: Config, experts: int) -> int:
    """num_experts_per_tok, which cannot exceed the experts there are to route to."""
    top_k = cfg.integer("num_experts_per_tok")
    if top_k > experts:
        raise ModelError(
            f"config.json of {cfg.name}: num_experts_per_tok {top_k} is more than the "
            f"{experts} experts there are",
            hint="each token is routed to some of the experts; check both values against "
            "the model card",
        )
    return top_k


def moe_counts(cfg: Config, model_type: str) -> tuple[int, int, int]:
    """(experts, experts per token, shared expert width); zeros for dense models."""
    experts = 0
    top_k = 0
    if model_type == "mixtral":
        experts = cfg.integer("num_local_experts")
        top_k = _top_k(cfg, experts)
    elif model_type in ("qwen2_moe", "qwen3_moe"):
        experts = cfg.integer(_qwen_experts_key(cfg) or "num_experts")
        top_k = _top_k(cfg, experts)
    shared = cfg.integer("shared_expert_intermediate_size") if model_type == "qwen2_moe" else 0
    return experts, top_k, shared
