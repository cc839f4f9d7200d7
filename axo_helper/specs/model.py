"""ModelSpec: the architecture facts the memory model needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LinearShape:
    """A Linear layer inside each transformer block: the unit LoRA targets."""

    name: str  # the module name Axolotl/PEFT use: q_proj, k_proj, ..., gate_proj, w1, c_attn ...
    d_in: int
    d_out: int
    count: int = 1  # copies per layer (MoE experts: num_experts)
    # False for weights that are not nn.Linear modules: transformers>=5 stores MoE experts as
    # fused 3D tensors (experts.gate_up_proj / experts.down_proj) and routers as bare
    # Parameters. LoRA "all-linear" does not adapt them and bitsandbytes does not quantize
    # them (Axolotl needs quantize_moe_experts / lora_target_parameters for that).
    nn_linear: bool = True


@dataclass(frozen=True)
class TokenizerFacts:
    """A local model directory's tokenizer, read once at inspection (model/local.py)."""

    template: str  # "" when the tokenizer has no chat template
    added: frozenset[str]  # added (special) tokens: each encodes to one token
    eos: str | None


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of a causal LM. Never holds weights."""

    name: str  # what the user passed: an HF id or a local path
    model_type: str  # config.json model_type: "llama", "qwen2", "mistral", ...
    architecture: str  # "LlamaForCausalLM"
    family: str  # calibration key: "llama", "qwen2", "gemma2", ... (usually model_type)
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    total_params: int
    active_params: int  # == total_params for dense models
    linears: tuple[LinearShape, ...]  # per transformer block
    num_experts: int = 0
    experts_per_token: int = 0
    shared_expert_intermediate_size: int = 0  # qwen2_moe: an always-active shared expert MLP
    mlp_gated: bool = True  # SwiGLU/GeGLU (gate+up+down) vs a plain 2-matrix MLP (GELU)
    torch_dtype: str = "bfloat16"
    source: Literal["local", "preset", "hub"] = "preset"
    local_path: str | None = None  # a local directory with config.json (and maybe weights)
    hf_id: str | None = None
    revision: str | None = None  # the hub revision pinned with --revision; None: main
    generic: bool = False  # True when the architecture was unknown and generic fields were used
    chat_template: bool = False  # the tokenizer (when known) ships a chat template
    tokenizer: TokenizerFacts | None = None  # local directories only
    notes: tuple[str, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def embedding_params(self) -> int:
        """Input embeddings plus an untied lm_head."""
        emb = self.vocab_size * self.hidden_size
        return emb if self.tie_word_embeddings else 2 * emb

    @property
    def linear_params(self) -> int:
        """Parameters in the blocks' Linear layers (those k-bit loading quantizes)."""
        return self.num_layers * sum(
            ls.d_in * ls.d_out * ls.count for ls in self.linears if ls.nn_linear
        )
