"""Plan -> the config mapping (key -> value, in file order) and key -> reason.

One function per block of keys, in the order the file lays them out: model, method,
data, sequence, batch, memory and speed, optimizer, several GPUs, output. The planner
decides the values (the TrainSetup, and `Plan.settings` for the keys beyond it: tf32,
seed, val_set_size, gradient_checkpointing, LoRA kernels, CPU data loading); this module
only names them as Axolotl keys, with the planner's reasons. Never the template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from axo_helper.config.data_keys import data_keys
from axo_helper.config.reasons import (
    ATTENTION_REASON,
    METHOD_REASON,
    PRECISION_REASON,
    ZERO_REASON,
    count,
    gib,
    packing_reason,
    sequence_reason,
)
from axo_helper.config.sheet import Sheet, settings_of
from axo_helper.config.templating import comment_text
from axo_helper.config.unfrozen import unfrozen_parameters
from axo_helper.memory.params import unadapted_weights
from axo_helper.rundir import PLUGIN, PLUGIN_PREDICTED_KEY, PLUGIN_RUN_DIR_KEY
from axo_helper.specs import ModelSpec, Plan


def base_model_ref(model: ModelSpec) -> str:
    """What Axolotl should load: the local directory, else the hub id."""
    if model.source == "local" and model.local_path:
        return model.local_path
    return model.hf_id or model.name


def decoder_layer_class(model: ModelSpec) -> str:
    """FSDP wraps each transformer block; transformers names it <Arch>DecoderLayer."""
    arch = model.architecture
    for suffix in ("ForCausalLM", "ForConditionalGeneration", "LMHeadModel"):
        if arch.endswith(suffix):
            return arch[: -len(suffix)] + "DecoderLayer"
    return arch + "DecoderLayer"


def deepspeed_filename(distributed: str, cpu_offload: bool) -> str:
    return f"deepspeed_{distributed}{'_offload' if cpu_offload else ''}.json"


def build_config(
    plan: Plan,
    *,
    output_dir: str,
    dataset_path: str,
    run_dir: str | None = None,
    dataset_prepared_path: str = "last_run_prepared",
    deepspeed_path: str | None = None,
    val_set_size: float | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The intended config (key -> value, in file order) and key -> reason.

    `overrides` are top-level keys set last (e.g. max_steps for a smoke test); they
    appear under "extra settings".
    """
    sheet = Sheet({k: comment_text(v) for k, v in plan.reasons.items() if v})
    _model_keys(sheet, plan)
    _method_keys(sheet, plan)
    data_keys(sheet, plan, dataset_path, dataset_prepared_path, val_set_size)
    _sequence_keys(sheet, plan)
    _batch_keys(sheet, plan)
    _memory_keys(sheet, plan)
    _optimizer_keys(sheet, plan)
    _distributed_keys(sheet, plan, deepspeed_path)
    _output_keys(sheet, plan, output_dir, run_dir)
    for key, value in (overrides or {}).items():
        sheet.cfg.pop(key, None)
        sheet.why.pop(key, None)
        sheet.put(key, value, "set by axo-helper for this run")
    return sheet.cfg, sheet.why


def _model_keys(sheet: Sheet, plan: Plan) -> None:
    model = plan.model
    sheet.put(
        "base_model",
        base_model_ref(model),
        f"{count(model.total_params)} parameters, {model.model_type}",
    )
    if model.revision:
        # Axolotl passes it to every from_pretrained: config, weights and tokenizer.
        sheet.put("revision_of_model", model.revision, "the hub revision pinned by --revision")
    sheet.put("tokenizer_type", "AutoTokenizer", "the tokenizer shipped with the model")


def _method_keys(sheet: Sheet, plan: Plan) -> None:
    s = plan.setup
    if s.method == "full":
        sheet.put("load_in_8bit", False, sheet.reasons.get("method") or METHOD_REASON["full"])
        sheet.put("load_in_4bit", False, "every weight trains, so none is quantized")
        return
    if s.method == "freeze":
        _freeze_keys(sheet, plan)
        return
    put = sheet.put
    put("adapter", s.method, sheet.reasons.get("method") or METHOD_REASON[s.method])
    put(
        "load_in_8bit",
        bool(s.load_in_8bit),
        "8-bit base weights"
        if s.load_in_8bit
        else "4-bit instead (load_in_4bit)"
        if s.method == "qlora"
        else "base weights unquantized",
    )
    put(
        "load_in_4bit",
        s.method == "qlora",
        "NF4 base weights: QLoRA" if s.method == "qlora" else "4-bit loading is QLoRA's",
    )
    put(
        "lora_r",
        s.lora_r,
        "adapter rank (policy): with every linear layer adapted, rank matters little",
    )
    put(
        "lora_alpha",
        plan.lora_alpha if plan.lora_alpha is not None else 2 * s.lora_r,
        "2 x rank: the usual scaling",
    )
    put(
        "lora_dropout",
        s.lora_dropout,
        "0: PEFT's ParamWrapper (lora_target_parameters) refuses dropout"
        if s.lora_target_parameters
        else "regularizes the adapters (policy)",
    )
    _lora_target_keys(sheet, plan)
    kernels = settings_of(plan).lora_kernels
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
        sheet.put_setting(key, kernels)


def _freeze_keys(sheet: Sheet, plan: Plan) -> None:
    """A partial fine-tune: no adapter, every block before the last ones frozen."""
    s = plan.setup
    kept = s.model.num_layers - s.frozen_layers
    why = sheet.reasons.get("method") or (
        f"partial fine-tune: the last {kept} of {s.model.num_layers} blocks train"
    )
    sheet.put("load_in_8bit", False, why)
    sheet.put("load_in_4bit", False, "the trained blocks update their own weights: none quantized")
    head = " and the output head" if s.train_head else ""
    sheet.put(
        "unfrozen_parameters",
        unfrozen_parameters(s),
        f"regexes over parameter names: blocks {s.frozen_layers}-{s.model.num_layers - 1}, "
        f"the final norm{head} train; every other parameter is frozen",
    )


def _lora_target_keys(sheet: Sheet, plan: Plan) -> None:
    s = plan.setup
    frozen = ", ".join(unadapted_weights(s))
    if tuple(s.lora_targets) in (("all-linear",), ()):
        sheet.put(
            "lora_target_linear",
            True,
            "adapt every nn.Linear of each block (the QLoRA paper's recipe)"
            + (f"; not adapted: {frozen}" if frozen else ""),
        )
    else:
        sheet.put(
            "lora_target_modules",
            list(s.lora_targets),
            "every nn.Linear of each block, named: quantize_moe_experts excludes lora_target_linear"
            if s.quantize_moe_experts
            else "the layers to adapt",
        )
    if s.lora_target_parameters:
        experts = s.model.num_experts
        sheet.put(
            "lora_target_parameters",
            list(s.lora_target_parameters),
            f"the {experts} experts' fused weight tensors (not nn.Linear in transformers 5): "
            f"a rank-{s.lora_r} adapter per expert"
            + (f"; not adapted: {frozen}" if frozen else ""),
        )
    if s.quantize_moe_experts:
        sheet.put(
            "quantize_moe_experts",
            True,
            "4-bit MoE experts too (fused tensors bitsandbytes skips otherwise)",
        )
    if s.lora_modules_to_save:
        sheet.put(
            "lora_modules_to_save",
            list(s.lora_modules_to_save),
            "trained in full, saved with the adapter",
        )


def _sequence_keys(sheet: Sheet, plan: Plan) -> None:
    s = plan.setup
    sheet.put("sequence_len", s.sequence_len, sequence_reason(plan))
    sheet.put_setting("excess_length_strategy", settings_of(plan).excess_length_strategy)
    sheet.put("sample_packing", s.sample_packing, packing_reason(plan))
    sheet.put_setting("batch_flattening", settings_of(plan).batch_flattening)
    if s.sample_packing:
        sheet.put(
            "pad_to_sequence_len", True, "fixed shapes with packing: no allocator fragmentation"
        )


def _batch_keys(sheet: Sheet, plan: Plan) -> None:
    s = plan.setup
    sheet.put(
        "micro_batch_size",
        s.micro_batch_size,
        f"predicted peak {gib(plan.memory.total_gib)} of {gib(plan.budget_gib)}",
    )
    sheet.put(
        "gradient_accumulation_steps",
        plan.gradient_accumulation_steps,
        f"{s.micro_batch_size} x {plan.gradient_accumulation_steps} x {s.num_gpus} GPU = {plan.effective_batch} samples per step",
    )
    sheet.put(
        "num_epochs", plan.num_epochs, "policy: more passes over small data, one over large data"
    )
    sheet.put_setting("seed", settings_of(plan).seed)


def _memory_keys(sheet: Sheet, plan: Plan) -> None:
    s, settings = plan.setup, settings_of(plan)
    put = sheet.put
    # Off under FSDP (its fsdp_config checkpoints activations): the planner's key, not
    # TrainSetup.gradient_checkpointing.
    sheet.put_setting("gradient_checkpointing", settings.gradient_checkpointing)
    if settings.gradient_checkpointing.value:
        put(
            "gradient_checkpointing_kwargs",
            {"use_reentrant": False},
            "non-reentrant: works with frozen base weights and DDP",
        )
        if s.selective_checkpointing:
            put(
                "selective_checkpointing",
                True,
                sheet.reasons.get("selective_checkpointing")
                or "keeps each block's attention output instead of recomputing it",
            )
        if s.activation_offloading:
            put(
                "activation_offloading",
                True,
                sheet.reasons.get("activation_offloading")
                or "the checkpointed blocks' inputs wait in pinned host memory",
            )
    put("attn_implementation", s.attn_implementation, ATTENTION_REASON.get(s.attn_implementation))
    precision_reason = sheet.reasons.get("precision") or PRECISION_REASON[s.precision]
    put(
        "bf16",
        s.precision == "bf16",
        "no bf16 on this GPU" if s.precision == "fp16" else precision_reason,
    )
    put(
        "fp16",
        s.precision == "fp16",
        "bf16 is used instead" if s.precision == "bf16" else precision_reason,
    )
    sheet.put_setting("tf32", settings.tf32)
    gpu = plan.hardware.gpu
    if s.fused_cross_entropy and gpu is not None and gpu.cuda:
        put(
            "plugins",
            ["axolotl.integrations.liger.LigerPlugin"],
            "Liger kernels (fused cross-entropy)",
        )
        put("liger_fused_linear_cross_entropy", True, "never materializes the full logits")


def _optimizer_keys(sheet: Sheet, plan: Plan) -> None:
    s = plan.setup
    put = sheet.put
    put(
        "optimizer",
        s.optimizer,
        "8-bit/paged optimizer states, needed to fit"
        if ("8bit" in s.optimizer or "paged" in s.optimizer)
        else "AdamW; fits without 8-bit states",
    )
    put("learning_rate", float(plan.learning_rate), f"policy for {s.method} at this model size")
    put("lr_scheduler", plan.lr_scheduler, "policy")
    put(
        "warmup_ratio",
        float(plan.warmup_ratio),
        "policy: a short warm-up stabilizes the first steps",
    )
    put("weight_decay", 0.0, "none, as in the Alpaca and QLoRA recipes")
    put("max_grad_norm", 1.0, "clip gradients at 1.0 (the Trainer's default)")


def _distributed_keys(sheet: Sheet, plan: Plan, deepspeed_path: str | None) -> None:
    s = plan.setup
    planned = sheet.reasons.get("distributed")
    if s.distributed in ("zero1", "zero2", "zero3"):
        sheet.put(
            "deepspeed",
            deepspeed_path or deepspeed_filename(s.distributed, s.cpu_offload),
            planned or ZERO_REASON[s.distributed] + (", CPU offload" if s.cpu_offload else ""),
        )
    elif s.distributed == "fsdp":
        sheet.put(
            "fsdp_version", 2, planned or "FSDP2: shards weights, gradients and optimizer state"
        )
        sheet.put(
            "fsdp_config",
            {
                "offload_params": bool(s.cpu_offload),
                # Rank-0-only loading deadlocks with bitsandbytes 4-bit (Axolotl refuses it).
                "cpu_ram_efficient_loading": s.method != "qlora",
                "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                "transformer_layer_cls_to_wrap": decoder_layer_class(plan.model),
                "state_dict_type": "FULL_STATE_DICT",
                "reshard_after_forward": True,
                "activation_checkpointing": bool(s.gradient_checkpointing),
            },
            "each transformer block wrapped and sharded; activation checkpointing "
            + ("on (needed to fit)" if s.gradient_checkpointing else "off (fits without it)"),
        )


def _output_keys(sheet: Sheet, plan: Plan, output_dir: str, run_dir: str | None) -> None:
    put = sheet.put
    put("output_dir", output_dir, "checkpoints and the trained adapter or weights")
    put("saves_per_epoch", 1, "one checkpoint per epoch")
    if sheet.cfg["val_set_size"]:
        put("evals_per_epoch", 2, "eval loss twice per epoch")
    put("logging_steps", 1, "log every step (loss, learning rate)")
    settings = settings_of(plan)
    sheet.put_setting("dataloader_pin_memory", settings.dataloader_pin_memory)
    sheet.put_setting("dataset_num_proc", settings.dataset_num_proc)
    if run_dir is not None:
        plugins = [*list(sheet.cfg.get("plugins", [])), PLUGIN]
        put("plugins", plugins, "axo-helper's plugin records speed, loss and peak memory")
        put(PLUGIN_RUN_DIR_KEY, run_dir, "where the plugin writes metrics.jsonl / metrics.json")
        put(
            PLUGIN_PREDICTED_KEY,
            round(float(plan.memory.total_gib), 3),
            "the plan's predicted peak per GPU, compared with the measured one",
        )
