"""The model a config trains, built as Axolotl 0.19 builds it, on fake tensors.

The real transformers class comes from the base model's config.json on the meta
device; PEFT wraps it with the config's LoRA; dtypes follow Axolotl's loader
(loaders/model.py `_configure_embedding_dtypes`, PEFT `prepare_model_for_kbit_training`);
gradient checkpointing is enabled the way Axolotl enables it (non-reentrant). Then every
parameter and buffer is replaced by a fake tensor of the same shape and dtype: shapes
and dtypes are real, storage is not, so an 8B model costs no memory here.

What cannot run on fake tensors is stood in for and said so in `Built.notes`:
FlashAttention runs as PyTorch's sdpa (the same O(s) saved tensors), and 4-bit/8-bit
bitsandbytes linears run as frozen 16-bit linears whose bytes are counted as the
quantized format (`Built.analytic_weight_bytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from axo_helper.memory.constants import INT8_BYTES_PER_PARAM, NF4_DQ_BYTES_PER_PARAM
from axo_helper.specs import FULL_WEIGHT_METHODS, TrainSetup

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# Axolotl's embedding modules for the dtype rules (loaders/utils.py get_linear_embedding_layers).
_EMBEDDING_NAMES = {
    "gpt_neox": ("embed_in", "embed_out"),
    "falcon": ("word_embeddings", "lm_head"),
}


@dataclass
class Built:
    model: nn.Module
    trainable: list[nn.Parameter]
    # id(parameter) -> bytes it really takes (quantized base linears), else its storage size
    analytic_weight_bytes: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def hf_config(raw: Mapping[str, Any], setup: TrainSetup) -> Any:
    """A transformers config from config.json's fields (the model type picks the class)."""
    from transformers import AutoConfig

    fields = {k: v for k, v in raw.items() if k not in ("model_type", "architectures")}
    config = AutoConfig.for_model(str(raw["model_type"]), **fields)
    config.use_cache = False  # HF Trainer turns the KV cache off for training
    return config


def attention_for_trace(setup: TrainSetup) -> tuple[str, str | None]:
    """(attn_implementation to run, note): flash-attention runs as sdpa on a CPU."""
    impl = setup.attn_implementation
    if impl == "flash_attention_2":
        from axo_helper.trace.kernels import register_flash_standin

        return register_flash_standin(), (
            "flash_attention_2 traced as PyTorch's CPU flash kernel (same saved tensors: "
            "q, k, v, output, log-sum-exp; no mask)"
        )
    if impl == "sdpa":
        return impl, (
            "sdpa traced as transformers runs it with a materialised causal mask (a bool "
            "s x s mask, and a 16-bit bias per layer saved by the kernel)"
        )
    return impl, None


def build(raw: Mapping[str, Any], setup: TrainSetup, fake_mode: Any) -> Built:
    """The training model of `setup`, with fake parameters made in `fake_mode`."""
    from transformers import AutoModelForCausalLM

    dtype = _DTYPES.get(setup.precision, torch.bfloat16)
    impl, note = attention_for_trace(setup)
    config = hf_config(raw, setup)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=impl)
    built = Built(model=model, trainable=[])
    if note:
        built.notes.append(note)
    model_type = str(raw["model_type"])
    embeddings = _EMBEDDING_NAMES.get(model_type, ("embed_tokens", "lm_head"))
    kbit = setup.method == "qlora" or setup.load_in_8bit
    if setup.method in FULL_WEIGHT_METHODS:
        if setup.attn_implementation != "flash_attention_2" and setup.distributed != "fsdp":
            # Axolotl upcasts the embeddings and every *norm* module to fp32 and, for a
            # full fine-tune without flash-attention, never casts them back.
            _cast(model, embeddings, torch.float32)
            _cast(model, ("norm",), torch.float32)
    elif kbit:
        _kbit_dtypes(model, embeddings, dtype)
    if setup.method in ("lora", "qlora"):
        model = _apply_lora(model, setup)
        built.model = model
    if setup.method == "freeze":
        _freeze(model, setup)
    if setup.gradient_checkpointing:
        if setup.saves_attention:
            _selective(model, built)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if setup.method in ("lora", "qlora") and hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    _materialise(model, fake_mode)
    built.trainable = [p for p in model.parameters() if p.requires_grad]
    if kbit:
        per = INT8_BYTES_PER_PARAM if setup.load_in_8bit else NF4_DQ_BYTES_PER_PARAM
        fmt = "LLM.int8" if setup.load_in_8bit else "NF4 (double quant)"
        for p in _quantized_weights(model):
            built.analytic_weight_bytes[id(p)] = round(p.numel() * per)
        built.notes.append(
            f"k-bit base linears run as frozen 16-bit linears; their bytes counted as {fmt} "
            "(analytic: bitsandbytes kernels do not run on fake tensors)"
        )
    return built


def _selective(model: nn.Module, built: Built) -> None:
    """selective_checkpointing as Axolotl 0.19 applies it (loaders/model.py): its own
    apply_selective_checkpointing wraps gradient_checkpointing_enable with a save policy
    for the SDPA / flash kernels, which the CPU flash kernel of the stand-in matches."""
    from axolotl.monkeypatch.selective_checkpointing import apply_selective_checkpointing

    # Axolotl applies it to the transformers model, before PEFT wraps it; a PeftModel
    # forwards gradient_checkpointing_enable to that model's (wrapped) method.
    base = getattr(model, "get_base_model", None)
    apply_selective_checkpointing(base() if callable(base) else model)
    built.notes.append("selective checkpointing: Axolotl's save policy (attention) applied")


def _freeze(model: nn.Module, setup: TrainSetup) -> None:
    """unfrozen_parameters applied as Axolotl 0.19 applies them (train.py
    setup_model_and_tokenizer): its own freeze_layers_except, then input gradients when
    the patterns name lm_head or embed_tokens."""
    from axolotl.utils.freeze import freeze_layers_except

    from axo_helper.config.unfrozen import unfrozen_parameters

    patterns = unfrozen_parameters(setup)
    freeze_layers_except(model, patterns)
    if any(e in p for p in patterns for e in ("lm_head", "embed_tokens")):
        model.enable_input_require_grads()  # type: ignore[operator]


def _cast(model: nn.Module, names: tuple[str, ...], dtype: torch.dtype) -> None:
    for name, module in model.named_modules():
        if any(n in name for n in names) and hasattr(module, "weight"):
            module.to(dtype)


def _kbit_dtypes(model: nn.Module, embeddings: tuple[str, ...], dtype: torch.dtype) -> None:
    """prepare_model_for_kbit_training upcasts what bitsandbytes did not quantize to fp32;
    Axolotl then casts norms and the embeddings back to the training dtype."""
    quantized = {id(p) for p in _quantized_weights(model)}
    for p in model.parameters():
        p.requires_grad_(False)
        if id(p) not in quantized and p.dtype in (torch.float16, torch.bfloat16):
            p.data = p.data.to(torch.float32)
    for name, module in model.named_modules():
        if "norm" in name or any(n in name for n in embeddings):
            module.to(dtype)


def _quantized_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights bitsandbytes quantizes: nn.Linear inside the blocks (not lm_head)."""
    found: list[torch.Tensor] = []
    for name, module in model.named_modules():
        leaf = name.split(".")[-1]
        if leaf in ("lm_head", "embed_out") or "lora_" in name:
            continue
        if isinstance(module, nn.Linear) and type(module) is nn.Linear:
            found.append(module.weight)
        elif isinstance(getattr(module, "base_layer", None), nn.Linear):
            found.append(module.base_layer.weight)
    return list({id(p): p for p in found}.values())


def _apply_lora(model: nn.Module, setup: TrainSetup) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    targets: Any = list(setup.lora_targets)
    if targets == ["all-linear"]:
        targets = _linear_names(model)
    config = LoraConfig(
        r=setup.lora_r,
        lora_alpha=2 * setup.lora_r,
        target_modules=targets or None,
        target_parameters=list(setup.lora_target_parameters) or None,
        lora_dropout=setup.lora_dropout,
        modules_to_save=list(setup.lora_modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)  # type: ignore[arg-type]


def _linear_names(model: nn.Module) -> list[str]:
    """lora_target_linear as Axolotl 0.19 resolves it (loaders/adapter.py
    find_all_linear_names): the leaf names of Linear modules, less the output head.
    PEFT's own "all-linear" differs: on fused MoE experts it wraps the 3D tensors."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or "Linear" in type(module).__name__:
            names.add(name.split(".")[-1])
    names.discard("embed_out" if "embed_out" in names else "lm_head")
    return sorted(names)


def _materialise(model: nn.Module, fake_mode: Any) -> None:
    """Swap every meta parameter and buffer for a fake tensor of its shape and dtype;
    tied parameters stay tied."""
    made: dict[int, nn.Parameter] = {}
    with fake_mode:
        for module in model.modules():
            for name, p in list(module._parameters.items()):
                if p is None:
                    continue
                if id(p) not in made:
                    t = torch.empty(p.shape, dtype=p.dtype)
                    made[id(p)] = nn.Parameter(t, requires_grad=p.requires_grad)
                module._parameters[name] = made[id(p)]
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = torch.zeros(b.shape, dtype=b.dtype)
