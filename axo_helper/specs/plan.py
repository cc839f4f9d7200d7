"""The Plan and the decisions it carries (settings, row fate, rejected alternatives)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from axo_helper.specs.base import FULL_WEIGHT_METHODS, Method, Precision
from axo_helper.specs.data import DataSpec
from axo_helper.specs.hardware import Hardware
from axo_helper.specs.model import ModelSpec
from axo_helper.specs.setup import MemoryBreakdown, TrainSetup


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
    # Padding-free batches (Axolotl's batch_flattening): unpacked, micro batch > 1 and a
    # varlen attention kernel; None otherwise.
    batch_flattening: Setting | None = None

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
class ChatChoice:
    """The chat keys of a config; `reasons` maps each set field's config key to its why."""

    template: str  # Axolotl `chat_template`: a named template or "tokenizer_default"
    like: str  # the named Axolotl template whose turn structure the choice relies on
    eot_tokens: tuple[str, ...] = ()
    eos_token: str | None = None  # special_tokens.eos_token for a base model
    drop_system_message: bool = False
    new_tokens: tuple[str, ...] = ()  # template tokens the vocabulary lacks (eos included)
    modules_to_save: tuple[str, ...] = ()  # trained in full because of new_tokens
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The `chat` object of `plan --json` (reasons are under the plan's settings)."""
        return {
            "chat_template": self.template,
            "eot_tokens": list(self.eot_tokens),
            "eos_token": self.eos_token,
            "drop_system_message": self.drop_system_message,
            "added_tokens": list(self.added_tokens),
            "modules_to_save": list(self.modules_to_save),
        }

    @property
    def added_tokens(self) -> tuple[str, ...]:
        """Axolotl's `tokens:` list: the new tokens special_tokens does not add itself."""
        return tuple(t for t in self.new_tokens if t != self.eos_token)


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
    # planner.plan always decides them; render requires them (config.sheet.settings_of).
    settings: ConfigSettings | None = None
    row_fate: RowFate | None = None  # None without --data
    chat: ChatChoice | None = None  # chat_template data only (chat.decide)

    # PEFT upcasts new adapters to fp32 (autocast_adapter_dtype=True, which Axolotl
    # keeps) and save_pretrained writes them as held: 4 bytes per trainable parameter.
    ADAPTER_BYTES_PER_PARAM = 4

    @property
    def adapter_bytes(self) -> int | None:
        """Size of adapter_model.safetensors (None for a full fine-tune)."""
        if self.setup.method in FULL_WEIGHT_METHODS:
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
            "fused_cross_entropy": s.fused_cross_entropy,
            "selective_checkpointing": s.selective_checkpointing,
            "activation_offloading": s.activation_offloading,
            "optimizer": s.optimizer,
            "num_gpus": s.num_gpus,
            "distributed": s.distributed,
            "cpu_offload": s.cpu_offload,
            "trainable_params": self.memory.trainable_params,
            "lora_r": s.lora_r if s.method not in FULL_WEIGHT_METHODS else None,
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
            "lora_dropout": s.lora_dropout if s.method not in FULL_WEIGHT_METHODS else None,
            "lora_target_modules": list(s.lora_targets) if s.method not in FULL_WEIGHT_METHODS else None,
            "lora_target_parameters": (
                list(s.lora_target_parameters) if s.method not in FULL_WEIGHT_METHODS else None
            ),
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
            # the hub revision --revision pinned (revision_of_model); None: main
            "revision": self.model.revision,
            "reasons": dict(self.reasons),
            "settings": self.settings.as_dict() if self.settings is not None else None,
            "rows": self.row_fate.as_dict() if self.row_fate is not None else None,
            "chat": self.chat.as_dict() if self.chat is not None else None,
            # method "freeze" (partial fine-tune): blocks that train (the last ones),
            # blocks kept frozen, and whether the output head trains; None otherwise.
            "freeze": (
                {
                    "trainable_layers": s.model.num_layers - s.frozen_layers,
                    "frozen_layers": s.frozen_layers,
                    "train_head": s.train_head,
                }
                if s.method == "freeze"
                else None
            ),
            # what the architecture facts came from and any caveat about them
            "model_notes": list(self.model.notes),
        }
