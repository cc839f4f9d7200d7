"""The value objects that flow between the modules (see docs/architecture.md).

All frozen dataclasses, no I/O, no torch. Each module produces one of these:

  hardware.resolve(spec)      -> Hardware
  model.inspect(name)         -> ModelSpec
  dataset.inspect(path, ...)  -> DataSpec
  memory.estimate(setup)      -> MemoryBreakdown     (setup: TrainSetup)
  planner.plan(hw, model, data, policy) -> Plan
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

GIB = 1024**3

Method = Literal["full", "lora", "qlora"]
Precision = Literal["bf16", "fp16", "fp32"]
Attention = Literal["flash_attention_2", "sdpa", "eager"]
Distributed = Literal["none", "ddp", "zero1", "zero2", "zero3", "fsdp"]
DatasetType = Literal["alpaca", "chat_template", "completion", "input_output"]

METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
DISTRIBUTED: tuple[Distributed, ...] = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp")


# --------------------------------------------------------------------------- hardware
@dataclass(frozen=True)
class GPU:
    """One accelerator, detected (NVML) or from a profile (presets/gpus.yaml)."""

    name: str  # "NVIDIA GeForce RTX 4090", or the profile's display name
    memory_gib: float  # total memory, GiB (2**30 bytes)
    compute_capability: tuple[int, int] | None = None  # (8, 9); None for AMD / unknown
    bf16: bool = True
    flash_attention_2: bool = True
    tflops_bf16: float | None = None  # dense bf16 (fp16 where no bf16) tensor TFLOP/s
    vendor: Literal["nvidia", "amd", "cpu", "unknown"] = "nvidia"
    free_gib: float | None = None  # NVML only
    index: int | None = None  # NVML only
    driver: str | None = None  # NVML only
    profile: str | None = None  # key in presets/gpus.yaml when matched
    uuid: str | None = None  # NVML only: "GPU-…", what CUDA_VISIBLE_DEVICES may name

    # Capabilities derived from vendor and compute capability, named once for the planner,
    # render and validate (Axolotl's own capability dict uses the same thresholds).
    @property
    def cuda(self) -> bool:
        """An NVIDIA GPU: CUDA-only kernels (Triton LoRA kernels, Liger) can run."""
        return self.vendor == "nvidia"

    @property
    def tf32(self) -> bool:
        """TF32 matmuls: NVIDIA Ampere (compute capability 8.0) and newer."""
        cc = self.compute_capability
        return self.cuda and cc is not None and cc >= (8, 0)

    @property
    def fp8(self) -> bool:
        """FP8 tensor cores: compute capability 9.0 (Hopper) and newer."""
        cc = self.compute_capability
        return cc is not None and cc >= (9, 0)

    @property
    def sm(self) -> str | None:
        """The CUDA architecture name, "sm_89"; None without a compute capability."""
        cc = self.compute_capability
        return f"sm_{cc[0]}{cc[1]}" if cc else None


@dataclass(frozen=True)
class Hardware:
    """What to plan against: N identical GPUs per node (or none: CPU)."""

    gpus: tuple[GPU, ...]
    source: Literal["nvml", "profile", "size", "cpu"]
    nodes: int = 1
    use_free_memory: bool = False  # --gpu auto plans against free memory
    warnings: tuple[str, ...] = ()

    @property
    def num_gpus(self) -> int:
        """GPUs per node."""
        return len(self.gpus)

    @property
    def world_size(self) -> int:
        return max(1, self.num_gpus) * self.nodes

    @property
    def gpu(self) -> GPU | None:
        """The GPU every rank plans against (the smallest one when they differ)."""
        if not self.gpus:
            return None
        return min(self.gpus, key=lambda g: self.memory_of(g))

    def memory_of(self, g: GPU) -> float:
        if self.use_free_memory and g.free_gib is not None:
            return g.free_gib
        return g.memory_gib

    @property
    def budget_gib(self) -> float:
        """Raw memory per GPU available to training, before the policy's headroom."""
        g = self.gpu
        return self.memory_of(g) if g is not None else 0.0

    @property
    def is_cpu(self) -> bool:
        return not self.gpus

    def describe(self) -> str:
        if not self.gpus:
            return "CPU (no GPU)"
        g = self.gpus[0]
        count = f"{self.num_gpus}x " if self.num_gpus > 1 else ""
        nodes = f" x {self.nodes} nodes" if self.nodes > 1 else ""
        return f"{count}{g.name} ({g.memory_gib:.1f} GiB){nodes}"


# --------------------------------------------------------------------------- model
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
    generic: bool = False  # True when the architecture was unknown and generic fields were used
    chat_template: bool = False  # the tokenizer (when known) ships a chat template
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


# --------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class TokenStats:
    p50: int
    p95: int
    p99: int
    max: int
    mean: float
    total: int  # estimated tokens in the whole dataset
    # The sampled lengths, sorted, thinned to at most dataset.tokens.QUANTILES evenly ranked
    # values (each stands for the same share of rows): what the planner reads to count the
    # rows a sequence_len keeps, drops or splits. () when unknown (hand-built specs).
    quantiles: tuple[int, ...] = ()


@dataclass(frozen=True)
class DataSpec:
    """What a dataset is and how long its samples are."""

    path: str
    files: tuple[str, ...]
    type: DatasetType
    # Axolotl field mapping for the type, e.g. {"field_messages": "conversations",
    # "message_property_mappings": {"role": "from", "content": "value"}} for ShareGPT keys.
    fields: dict[str, Any]
    rows: int
    sampled_rows: int  # rows whose tokens were counted
    tokens: TokenStats
    tokenizer: str | None  # the tokenizer used; None when approximated
    approximate: bool  # True: chars-per-token approximation (see docs/dataset.md)
    keys: tuple[str, ...] = ()  # top-level keys of the rows
    file_format: Literal["jsonl", "json", "parquet", "csv", "txt", "mixed"] = "jsonl"
    warnings: tuple[str, ...] = ()
    # chat_template only: the distinct message roles seen (values of the role/from key).
    roles: tuple[str, ...] = ()


# --------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class TrainSetup:
    """Everything memory.estimate needs; can describe any Axolotl config, not only ours."""

    model: ModelSpec
    method: Method = "lora"
    precision: Precision = "bf16"
    load_in_8bit: bool = False  # LoRA over an LLM.int8 base
    lora_r: int = 16
    lora_targets: tuple[str, ...] = ("all-linear",)  # module names, or "all-linear"
    lora_dropout: float = 0.05
    lora_modules_to_save: tuple[str, ...] = ()  # e.g. ("embed_tokens", "lm_head")
    sequence_len: int = 2048
    micro_batch_size: int = 1
    sample_packing: bool = False
    gradient_checkpointing: bool = True
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


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Rejected:
    method: str  # "full", "lora", "qlora", or a variant such as "lora (micro_batch 8)"
    total_gib: float
    reason: str


@dataclass(frozen=True)
class Setting:
    """One config value the planner decided, with the reason the config comments."""

    value: bool | int | float | str
    reason: str


@dataclass(frozen=True)
class ConfigSettings:
    """Config values beyond the TrainSetup, decided by the planner (render writes them).

    Each is named by its Axolotl key; None where the key does not apply.
    """

    tf32: Setting
    seed: Setting
    val_set_size: Setting
    # Axolotl's gradient_checkpointing key: off under FSDP, whose fsdp_config checkpoints
    # activations itself (TrainSetup.gradient_checkpointing keeps what the memory needs).
    gradient_checkpointing: Setting
    lora_kernels: Setting | None = None  # lora_{mlp,qkv,o,embedding}_kernel; None: full
    dataloader_pin_memory: Setting | None = None  # set on CPU only
    dataset_num_proc: Setting | None = None  # set on CPU only
    # "drop"/"truncate" where some rows are longer than sequence_len (Axolotl's default is
    # an unwritten drop); None where no row is (completion rows are split instead).
    excess_length_strategy: Setting | None = None

    def as_dict(self) -> dict[str, dict[str, Any] | None]:
        return {
            f.name: (asdict(v) if (v := getattr(self, f.name)) is not None else None)
            for f in fields(self)
        }


@dataclass(frozen=True)
class RowFate:
    """What Axolotl does with the dataset's rows at one sequence_len (planner/lengths.py).

    Estimated from the token-length sample and scaled to all rows. `handling`: "drop"
    (alpaca, chat_template, input_output: a row over sequence_len is dropped, or truncated
    under excess_length_strategy: truncate) or "split" (completion: every row becomes
    ceil(length / sequence_len) sequences, after the tokenizer cuts it at 64 x sequence_len).
    """

    sequence_len: int
    handling: Literal["drop", "truncate", "split"]
    rows: int  # rows in the dataset
    rows_kept: int  # rows trained whole (shorter than sequence_len)
    rows_dropped: int  # rows over sequence_len that are dropped
    rows_truncated: int  # rows cut (truncate; completion rows over 64 x sequence_len)
    rows_split: int  # completion rows over sequence_len, trained as several sequences
    sequences: int  # training sequences Axolotl builds (before packing)
    tokens: int  # tokens in the dataset
    tokens_kept: int  # tokens that are trained
    tokens_dropped: int  # tokens in dropped rows, or cut off by truncation
    mean_len: float  # mean length of a training sequence
    p95_len: int  # 95th percentile length of a training sequence

    @property
    def rows_kept_share(self) -> float:
        """Rows whose every token is trained, whole or split."""
        lost = self.rows_dropped + self.rows_truncated
        return 1.0 - lost / self.rows if self.rows else 1.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["mean_len"] = round(self.mean_len, 1)
        return out


@dataclass(frozen=True)
class Plan:
    """A decided training setup, with its estimate and the reasons behind each choice."""

    hardware: Hardware
    model: ModelSpec
    data: DataSpec | None
    setup: TrainSetup  # the setup that was estimated (method, seq len, micro batch, ...)
    memory: MemoryBreakdown
    budget_gib: float  # per GPU, after headroom
    gradient_accumulation_steps: int
    lora_alpha: int | None
    learning_rate: float
    num_epochs: int
    lr_scheduler: str
    warmup_ratio: float
    rejected: tuple[Rejected, ...] = ()
    warnings: tuple[str, ...] = ()
    # key -> one-line reason, rendered as YAML comments ("micro_batch_size": "21.3 of 24.0 GiB ...")
    reasons: dict[str, str] = field(default_factory=dict)
    steps_per_epoch: int | None = None
    seconds_per_epoch: float | None = None
    tokens_per_epoch: int | None = None
    assumed_mfu: float | None = None  # model FLOPs utilisation used for the time estimate
    calibrated_from: int = 0  # measured runs that corrected the estimate
    seconds_per_step: float | None = None  # one optimizer step (all micro batches, all GPUs)
    tokens_per_second: float | None = None  # whole run: assumed MFU, or measured when calibrated
    # planner.plan always decides them; render requires them (config.build.settings_of).
    settings: ConfigSettings | None = None
    row_fate: RowFate | None = None  # None without --data

    # PEFT upcasts new adapters to fp32 (autocast_adapter_dtype=True, which Axolotl
    # keeps) and save_pretrained writes them as held: 4 bytes per trainable parameter.
    ADAPTER_BYTES_PER_PARAM = 4

    @property
    def adapter_bytes(self) -> int | None:
        """Size of adapter_model.safetensors (None for a full fine-tune)."""
        if self.setup.method == "full":
            return None
        return self.memory.trainable_params * self.ADAPTER_BYTES_PER_PARAM

    # Convenience views of the setup, named as in the --json output.
    @property
    def method(self) -> Method:
        return self.setup.method

    @property
    def precision(self) -> Precision:
        return self.setup.precision

    @property
    def micro_batch_size(self) -> int:
        return self.setup.micro_batch_size

    @property
    def num_gpus(self) -> int:
        return self.setup.num_gpus

    @property
    def effective_batch(self) -> int:
        return self.setup.micro_batch_size * self.gradient_accumulation_steps * self.setup.num_gpus

    def to_json(self) -> dict[str, Any]:
        """The stable `plan --json` object (documented in docs/plan-json.md)."""
        s = self.setup
        return {
            "method": s.method,
            "precision": s.precision,
            "attn_implementation": s.attn_implementation,
            "sequence_len": s.sequence_len,
            "sample_packing": s.sample_packing,
            "micro_batch_size": s.micro_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "effective_batch_size": self.effective_batch,
            "gradient_checkpointing": s.gradient_checkpointing,
            "optimizer": s.optimizer,
            "num_gpus": s.num_gpus,
            "distributed": s.distributed,
            "trainable_params": self.memory.trainable_params,
            "lora_r": s.lora_r if s.method != "full" else None,
            "lora_alpha": self.lora_alpha,
            "learning_rate": self.learning_rate,
            "num_epochs": self.num_epochs,
            "memory": {**self.memory.as_dict(), "budget_gib": round(self.budget_gib, 2)},
            "rejected": [asdict(r) for r in self.rejected],
            "warnings": list(self.warnings),
            "model": self.model.name,
            "gpu": self.hardware.describe(),
            "steps_per_epoch": self.steps_per_epoch,
            "seconds_per_epoch": (
                round(self.seconds_per_epoch, 1) if self.seconds_per_epoch is not None else None
            ),
            "calibrated_from": self.calibrated_from,
            # Added after the first release of this object; as stable as the keys above.
            "lora_dropout": s.lora_dropout if s.method != "full" else None,
            "lr_scheduler": self.lr_scheduler,
            "warmup_ratio": self.warmup_ratio,
            "adapter_size_mb": (
                round(self.adapter_bytes / 1e6, 1) if self.adapter_bytes is not None else None
            ),
            "tokens_per_epoch": self.tokens_per_epoch,
            "seconds_per_step": (
                round(self.seconds_per_step, 2) if self.seconds_per_step is not None else None
            ),
            "assumed_mfu": self.assumed_mfu,
            "tflops": self.hardware.gpu.tflops_bf16 if self.hardware.gpu else None,
            "reasons": dict(self.reasons),
            "settings": self.settings.as_dict() if self.settings is not None else None,
            "rows": self.row_fate.as_dict() if self.row_fate is not None else None,
        }
