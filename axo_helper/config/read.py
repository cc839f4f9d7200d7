"""Read any Axolotl config (ours or hand-written): the one place that knows its keys.

Precision, attention (legacy boolean flags included), the batch keys, the method,
the distributed strategy and the TrainSetup memory.estimate needs are all read here,
so validate, run, export and the plugin agree on what a config means.

Pure apart from reading a DeepSpeed JSON the config points to (one of Axolotl's own
deepspeed_configs/ names is understood without its file). Defaults are
Axolotl 0.19's own (and PEFT's where Axolotl defers to it), so a key the user left
out is estimated the way Axolotl will run it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axo_helper.errors import ConfigError
from axo_helper.specs import Attention, Distributed, Method, ModelSpec, Precision, TrainSetup

# Axolotl 0.19 defaults for keys a config may leave out.
DEFAULT_SEQUENCE_LEN = 2048
DEFAULT_MICRO_BATCH = 1
DEFAULT_OPTIMIZER = "adamw_torch_fused"
DEFAULT_LORA_R = 8  # PEFT's LoraConfig default, used when lora_r is unset
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")  # PEFT's default for Llama-style models

# Legacy boolean attention flags -> the attn_implementation Axolotl 0.19 maps them to
# (then warns that they are deprecated). In the order a config with several set is read.
LEGACY_ATTENTION_FLAGS = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "xformers_attention": "xformers",
    "flex_attention": "flex_attention",
    "sage_attention": "sage",
    "eager_attention": "eager",
}


# Values are read the way Axolotl's pydantic models read them (lax mode), so the
# estimate never refuses a config Axolotl accepts: "8" and 8.0 are the integer 8,
# and a flag is on for true, 1, "yes", "on", "t", "y" in any case.
_TRUE_STRINGS = frozenset({"1", "on", "t", "true", "y", "yes"})


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_STRINGS
    return value is True or (type(value) in (int, float) and value == 1)


def lax_int(value: Any) -> int | None:
    """An integer as pydantic's lax mode reads it (integral floats, numeric strings);
    None when it is not one."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            value = float(value.strip().replace("_", ""))
        except ValueError:
            return None
    if isinstance(value, (int, float)) and value == value and int(value) == value:
        return int(value)
    return None


def _int(cfg: Mapping[str, Any], key: str, default: int) -> int:
    value = cfg.get(key)
    if value is None:
        return default
    number = lax_int(value)
    if number is None or number < 1:
        raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    return number


def attention_of(cfg: Mapping[str, Any]) -> Attention:
    """The attention implementation a config selects, mapped to the estimator's three."""
    impl = cfg.get("attn_implementation")
    if not impl:
        impl = next((v for k, v in LEGACY_ATTENTION_FLAGS.items() if _truthy(cfg.get(k))), None)
    if not impl:
        return "sdpa"  # transformers' default when nothing is set
    return _estimated_as(str(impl))


def _estimated_as(impl: str) -> Attention:
    """The estimator's class of an attn_implementation: xformers, flex and other
    memory-efficient kernels cost like sdpa; sage, fp8 and hub kernels like FA2."""
    if impl == "eager":
        return "eager"
    if "flash" in impl or impl in ("sage", "fp8") or "/" in impl:
        return "flash_attention_2"
    return "sdpa"


def precision_of(cfg: Mapping[str, Any]) -> Precision:
    bf16 = cfg.get("bf16")
    if _truthy(bf16) or bf16 == "auto" or _truthy(cfg.get("bfloat16")):
        # "auto" resolves to bf16 on GPUs that have it and fp16 otherwise: 2 bytes either way.
        return "bf16"
    if _truthy(cfg.get("fp16")) or _truthy(cfg.get("float16")):
        return "fp16"
    return "fp32"


def target_dtype(cfg: Mapping[str, Any]) -> str | None:
    """The torch dtype name merged weights are saved in: the training precision when
    bf16 or fp16 is switched on; None (keep the base's) for fp32 or bf16: auto, which is
    decided on the training machine."""
    if _truthy(cfg.get("bf16")):
        return "bfloat16"
    if _truthy(cfg.get("fp16")):
        return "float16"
    return None


def batch_of(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(micro_batch_size, gradient_accumulation_steps) as Axolotl will use them: an
    unset or invalid value is its default, and `batch_size` alone sets the accumulation."""

    def positive(key: str) -> int | None:
        value = lax_int(cfg.get(key)) if not isinstance(cfg.get(key), bool) else None
        return value if value is not None and value > 0 else None

    mb = positive("micro_batch_size") or 1
    ga = positive("gradient_accumulation_steps")
    if ga is None:
        bs = positive("batch_size")
        ga = max(1, bs // mb) if bs else 1
    return mb, ga


def method_of(cfg: Mapping[str, Any]) -> Method:
    adapter = cfg.get("adapter")
    if not adapter:
        # Axolotl's unfrozen_parameters: every other parameter frozen (a partial fine-tune)
        return "freeze" if cfg.get("unfrozen_parameters") else "full"
    if adapter == "qlora" or _truthy(cfg.get("load_in_4bit")):
        return "qlora"
    return "lora"


# Axolotl's own DeepSpeed configs (deepspeed_configs/ of its repository; not in the
# wheel: `axolotl fetch deepspeed_configs` downloads them into the working directory).
# File stem -> (ZeRO stage, CPU offload), read from the files at axolotl-ai-cloud/axolotl
# main (unchanged since July 2025). zero2 offloads the optimizer to CPU; the
# cpuoffload_* variants of zero3 offload the parameters (and, "_all", the optimizer).
KNOWN_DEEPSPEED_CONFIGS: dict[str, tuple[int, bool]] = {
    "zero1": (1, False),
    "zero1_torch_compile": (1, False),
    "zero2": (2, True),
    "zero2_torch_compile": (2, True),
    "zero3": (3, False),
    "zero3_bf16": (3, False),
    "zero3_bf16_cpuoffload_all": (3, True),
    "zero3_bf16_cpuoffload_params": (3, True),
}
_BY_STAGE: dict[Any, Distributed] = {1: "zero1", 2: "zero2", 3: "zero3"}


def known_deepspeed(value: Any) -> tuple[int, bool] | None:
    """(stage, offload) when `value` names one of Axolotl's deepspeed_configs/ files."""
    if not isinstance(value, str):
        return None
    path = Path(value.strip())
    if path.parent.name != "deepspeed_configs" or path.suffix != ".json":
        return None
    return KNOWN_DEEPSPEED_CONFIGS.get(path.stem)


def deepspeed_candidates(value: str, config_dir: Path | None) -> list[Path]:
    """Where a `deepspeed:` path is looked for: beside the config, then the working
    directory (where Axolotl itself opens it)."""
    raw = Path(value).expanduser()
    if raw.is_absolute():
        return [raw]
    return [*([config_dir / raw] if config_dir else []), Path.cwd() / raw]


def _read_deepspeed(value: Any, config_dir: Path | None) -> dict[str, Any] | None:
    """The DeepSpeed JSON a config points to; None for a known Axolotl name whose
    file is not here (its stage and offload come from KNOWN_DEEPSPEED_CONFIGS)."""
    if isinstance(value, Mapping):
        return dict(value)
    candidates = deepspeed_candidates(str(value), config_dir)
    for path in candidates:
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read the DeepSpeed config {path}: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"the DeepSpeed config {path} is not a JSON object")
            return data
    if known_deepspeed(value) is not None:
        return None
    where = " or ".join(str(p) for p in candidates)
    raise ConfigError(
        f"deepspeed: {value} not found (looked in {where})",
        hint="write the path relative to the config file or the directory you run axolotl from",
    )


def fsdp_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """fsdp_config as Axolotl 0.19 reads it: a `fsdp_`-prefixed key (the deprecated
    accelerate spelling) is renamed without the prefix, fsdp_version kept, a later key
    winning (validation.py check_fsdp_config_kwargs_prefix does the same)."""
    raw = cfg.get("fsdp_config")
    if not isinstance(raw, Mapping):
        return {}
    return {
        (k.replace("fsdp_", "") if k.startswith("fsdp_") and k != "fsdp_version" else k): v
        for k, v in raw.items()
        if isinstance(k, str)
    }


def distributed_of(
    cfg: Mapping[str, Any], num_gpus: int, config_dir: Path | None = None
) -> tuple[Distributed, bool]:
    """(distributed strategy, CPU offload) of a config."""
    if cfg.get("deepspeed"):
        ds = _read_deepspeed(cfg["deepspeed"], config_dir)
        if ds is None:
            stage, offload = known_deepspeed(cfg["deepspeed"]) or (0, False)
            return _BY_STAGE[stage], offload
        zero = ds.get("zero_optimization") or {}
        stage = zero.get("stage", 0)
        offload = any(
            isinstance(zero.get(k), Mapping)
            and str(zero[k].get("device", "none")).lower() in ("cpu", "nvme")
            for k in ("offload_optimizer", "offload_param")
        )
        if stage in _BY_STAGE:
            return _BY_STAGE[stage], offload
        return ("ddp" if num_gpus > 1 else "none"), False
    if cfg.get("fsdp") or isinstance(cfg.get("fsdp_config"), Mapping):
        return "fsdp", _truthy(fsdp_options(cfg).get("offload_params"))
    return ("ddp" if num_gpus > 1 else "none"), False


def _targets(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    if _truthy(cfg.get("lora_target_linear")):
        return ("all-linear",)
    modules = cfg.get("lora_target_modules")
    if isinstance(modules, str):
        # PEFT accepts "all-linear" or a regex; a regex is estimated as all linear layers.
        return (
            ("all-linear",) if modules == "all-linear" or not modules.isidentifier() else (modules,)
        )
    if isinstance(modules, (list, tuple)) and modules:
        return tuple(str(m) for m in modules)
    if _target_parameters(cfg):
        return ()  # experts only: Axolotl passes PEFT no target_modules
    return DEFAULT_LORA_TARGETS


def _target_parameters(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """lora_target_parameters: a name or a list of names (Axolotl's schema: str | list)."""
    names = cfg.get("lora_target_parameters")
    if isinstance(names, str):
        return (names,) if names.strip() else ()
    if isinstance(names, (list, tuple)):
        return tuple(str(n) for n in names if str(n).strip())
    return ()


def setup_from_config(
    cfg: Mapping[str, Any],
    model: ModelSpec,
    num_gpus: int = 1,
    *,
    config_dir: str | Path | None = None,
) -> TrainSetup:
    """The TrainSetup an Axolotl config describes, for `model` on `num_gpus` ranks.

    config_dir: where a relative `deepspeed:` path is looked up first (then the
    working directory, as Axolotl does). Raises ConfigError for values it cannot
    read (a missing DeepSpeed file that is not one of Axolotl's deepspeed_configs/,
    a non-integer micro_batch_size).
    """
    method = method_of(cfg)
    gc = cfg.get("gradient_checkpointing")
    fsdp_ac = _truthy(fsdp_options(cfg).get("activation_checkpointing"))
    distributed, offload = distributed_of(cfg, num_gpus, Path(config_dir) if config_dir else None)
    lora_dropout = cfg.get("lora_dropout")
    return TrainSetup(
        model=model,
        method=method,
        precision=precision_of(cfg),
        load_in_8bit=method == "lora" and _truthy(cfg.get("load_in_8bit")),
        lora_r=_int(cfg, "lora_r", DEFAULT_LORA_R),
        lora_targets=_targets(cfg),
        lora_target_parameters=_target_parameters(cfg) if method != "full" else (),
        lora_dropout=float(lora_dropout) if isinstance(lora_dropout, (int, float)) else 0.0,
        lora_modules_to_save=tuple(str(m) for m in (cfg.get("lora_modules_to_save") or ())),
        sequence_len=_int(cfg, "sequence_len", DEFAULT_SEQUENCE_LEN),
        micro_batch_size=_int(cfg, "micro_batch_size", DEFAULT_MICRO_BATCH),
        sample_packing=_truthy(cfg.get("sample_packing")),
        # "offload"/"offload_disk" are deprecated spellings of checkpointing + offload.
        gradient_checkpointing=bool(gc) or fsdp_ac,
        activation_offloading=bool(gc) and _offloads_activations(cfg, gc),
        selective_checkpointing=bool(gc) and _saves_attention(cfg.get("selective_checkpointing")),
        attn_implementation=attention_of(cfg),
        optimizer=str(cfg.get("optimizer") or DEFAULT_OPTIMIZER),
        fused_cross_entropy=_truthy(cfg.get("liger_fused_linear_cross_entropy"))
        or _truthy(cfg.get("cut_cross_entropy")),
        num_gpus=max(1, num_gpus),
        distributed=distributed,
        cpu_offload=offload,
        quant_storage_bf16=method == "qlora" and distributed in ("zero3", "fsdp"),
        quantize_moe_experts=method == "qlora" and _truthy(cfg.get("quantize_moe_experts")),
        gradient_accumulation_steps=(
            _int(cfg, "gradient_accumulation_steps", 1)
            if cfg.get("gradient_accumulation_steps") is not None
            else None
        ),
        **_freeze_fields(cfg, model, method),
    )


def _offloads_activations(cfg: Mapping[str, Any], gc: Any) -> bool:
    """Axolotl activation_offloading (true, legacy, disk, hidden_states), or the
    deprecated gradient_checkpointing: offload / offload_disk that turn it on."""
    value = cfg.get("activation_offloading")
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "off")
    return _truthy(value) or gc in ("offload", "offload_disk")


def _saves_attention(value: Any) -> bool:
    """selective_checkpointing: true, or a mapping whose `save` list (default
    [attention]) names the attention kernels."""
    if isinstance(value, Mapping):
        save = value.get("save", ["attention"])
        return isinstance(save, list) and "attention" in save
    return _truthy(value)


def _freeze_fields(cfg: Mapping[str, Any], model: ModelSpec, method: Method) -> dict[str, Any]:
    """trainable_layers / train_head of a partial fine-tune (unfrozen_parameters); patterns
    that are not "the last N blocks" are sized as training every block."""
    if method != "freeze":
        return {}
    from axo_helper.config.unfrozen import read_unfrozen

    patterns = cfg.get("unfrozen_parameters") or ()
    if isinstance(patterns, str):
        patterns = (patterns,)
    found = read_unfrozen([str(p) for p in patterns], model)
    if found is None:
        return {"trainable_layers": model.num_layers, "train_head": True}
    return {"trainable_layers": found.trainable_layers, "train_head": found.train_head}


# ------------------------------------------------------------------ chat keys
def _token_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str) and v]
    return []


def configured_eot(cfg: Mapping[str, Any]) -> list[str]:
    """axolotl.yml's `eot_tokens` (Axolotl reads them from the top level only)."""
    return _token_strings(cfg.get("eot_tokens"))


def configured_eos(cfg: Mapping[str, Any]) -> str | None:
    """axolotl.yml's `special_tokens.eos_token`: the eos a base model is given."""
    special = cfg.get("special_tokens")
    eos = special.get("eos_token") if isinstance(special, Mapping) else None
    return eos if isinstance(eos, str) and eos else None


def trains_turns(cfg: Mapping[str, Any]) -> bool:
    """Whether the config sets any of the keys that decide how a turn ends."""
    return bool(configured_eot(cfg) or configured_eos(cfg) or cfg.get("chat_template"))
