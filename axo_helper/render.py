"""Plan -> a commented Axolotl YAML (and a DeepSpeed JSON when the plan shards with ZeRO).

The values are decided here, in Python, as one plain dict (`RenderedConfig.config`);
the Jinja template only lays them out in sections with a reason beside each. After
rendering, the text is parsed back and must equal that dict exactly, then it passes
the JSON Schema: a template slip or a hostile string (a model id with `: ` or a
newline in it) fails loudly here instead of producing a config that means something
else.

No torch or Axolotl import: render works without the [train] extra.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from axo_helper import __version__
from axo_helper.errors import ConfigError, OutputExistsError
from axo_helper.resources import templates_dir
from axo_helper.specs import ModelSpec, Plan

PLUGIN = "axo_helper.plugin.AxoHelperPlugin"
PLUGIN_RUN_DIR_KEY = "axo_helper_run_dir"
PLUGIN_PREDICTED_KEY = "axo_helper_predicted_gib"
YAML_TEMPLATE = "axolotl.yml.j2"

# Characters PyYAML treats as line breaks (YAML 1.1): a comment must not contain them,
# or the rest of the "comment" becomes YAML.
_LINE_BREAKS = re.compile(r"[\r\n\x85\u2028\u2029]+")
# Plain scalars that YAML 1.1 (PyYAML, Axolotl) reads as strings but YAML 1.2 readers
# (editors, other tools) read as numbers or booleans: quote them so every reader agrees.
_AMBIGUOUS_PLAIN = re.compile(
    r"^([-+.]?[0-9]|\.(inf|nan)$|(true|false|null|yes|no|on|off|y|n|~)$)", re.I
)

# Turn-ending tokens of the chat templates axo-helper names, and the families whose
# own tokenizer template ends turns with them. Axolotl refuses an eot token that
# encodes to several tokens, so one is only written when the vocabulary has it.
_EOT_BY_TEMPLATE = {
    "llama3": "<|eot_id|>",
    "qwen_25": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "gemma": "<end_of_turn>",
    "phi_3": "<|end|>",
}
# family -> (named template, smallest vocabulary that has its special tokens). The
# vocabulary check keeps Llama-2-vocabulary models (TinyLlama, SmolLM2: model_type
# llama) off the Llama 3 template, whose <|eot_id|> they would split into pieces.
_TEMPLATE_BY_FAMILY = {
    "llama": ("llama3", 128_000),
    "qwen2": ("qwen_25", 150_000),
    "qwen2_moe": ("qwen_25", 150_000),
    "qwen3": ("qwen3", 150_000),
    "qwen3_moe": ("qwen3", 150_000),
    "gemma": ("gemma", 256_000),
    "gemma2": ("gemma", 256_000),
    "gemma3": ("gemma", 256_000),
    "phi3": ("phi_3", 32_000),
    "mistral": ("mistral_v2v3", 32_768),
}
_KNOWN_EOT_TOKENS = ("<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>")

_DS_TYPE_BY_FORMAT = {
    "jsonl": "json",
    "json": "json",
    "parquet": "parquet",
    "csv": "csv",
    "txt": "text",
}


@dataclass(frozen=True)
class RenderedConfig:
    """A rendered, parsed-back and schema-valid config, not yet written."""

    yaml_text: str
    config: dict[str, Any]  # == yaml.safe_load(yaml_text)
    deepspeed_json: str | None = None
    deepspeed_filename: str | None = None  # written beside the YAML by write_config
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- filters
def yaml_value(value: Any) -> str:
    """A YAML flow node that reads back as exactly `value` (the `yaml` filter).

    Strings that cannot stay on one line (newlines, YAML 1.1 line breaks such as
    U+2028) are double-quoted with escapes, so a value never spills into the next
    line; strings that would read as something else are quoted.
    """
    text = _dump(value, style=None)
    if isinstance(value, str) and (
        "\n" in text
        or _LINE_BREAKS.search(text)
        or (text == value and _AMBIGUOUS_PLAIN.match(value))
    ):
        text = _dump(value, style='"')
    if "\n" in text or _LINE_BREAKS.search(text):
        text = _dump(value, style='"')
    # The guarantee the rest of the module relies on; cheap, so always checked.
    if yaml.safe_load(f"k: {text}\n") != {"k": value}:
        raise ValueError(f"cannot render {value!r} as a single-line YAML value")
    return text


def _dump(value: Any, style: str | None) -> str:
    text = yaml.safe_dump(
        value,
        default_flow_style=True,
        default_style=style,
        allow_unicode=True,
        width=2**31 - 1,
        sort_keys=False,
    )
    # A lone scalar document ends with "...": drop the end marker and the newline.
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    return text.rstrip("\n")


def comment_text(text: Any) -> str:
    """One line of comment text: no line breaks, so nothing after it turns into YAML."""
    return _LINE_BREAKS.sub(" ", str(text)).strip()


def _comment(reason: Any) -> str:
    """`  # reason`, or nothing when there is no reason (the `comment` filter)."""
    if reason is None or reason == "":
        return ""
    return "  # " + comment_text(reason)


def modelfile_value(value: Any, prefer: str = "raw") -> str:
    """`value` written as one Ollama Modelfile argument (the `modelfile` filter).

    A Modelfile has no escapes: an argument is raw, in double quotes or in triple
    double quotes, and Ollama's parser ends it at the first line break where the text
    so far is a complete argument. A chat template or a name holding triple quotes or
    a newline could otherwise end a TEMPLATE early and turn its rest into commands.
    The argument is written in the first form (`prefer`: "raw", "double" or "triple",
    then the others in that order) that reads back as exactly `value`; ValueError when
    none does: a line of a multi-line value ends in triple quotes, or the value holds
    control characters, which Ollama drops.
    """
    text = str(value)
    forms = {"raw": text, "double": f'"{text}"', "triple": f'"""{text}"""'}
    for style in dict.fromkeys((prefer, "raw", "double", "triple")):
        if _modelfile_reads(forms[style]) == text:
            return forms[style]
    raise ValueError(f"cannot write {text!r} as a Modelfile value")


def _modelfile_reads(written: str) -> str | None:
    """What Ollama's parser (parser/parser.go) reads from `CMD <written>` + newline;
    None when the argument ends before `written` does or never ends."""
    buf: list[str] = []
    end = len(written)
    for i, ch in enumerate(written + "\n"):
        if ch in "\r\n":
            got = _modelfile_unquote("".join(buf).strip())
            if got is not None:
                return got if i == end else None
            buf.append(ch)
        elif ch == "\t" or ch.isprintable():  # the parser drops other control characters
            buf.append(ch)
    return None


def _modelfile_unquote(text: str) -> str | None:
    if text.startswith('"""'):
        return text[3:-3] if len(text) >= 6 and text.endswith('"""') else None
    if text.startswith('"'):
        return text[1:-1] if len(text) >= 2 and text.endswith('"') else None
    return text


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: StrictUndefined (a missing value is an error, never
    an empty string), no autoescape (YAML, JSON, Markdown and Modelfiles, not HTML)."""
    root = Path(str(templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yaml"] = yaml_value
    env.filters["comment"] = _comment
    env.filters["comment_text"] = comment_text
    env.filters["modelfile"] = modelfile_value
    env.filters["shell"] = shlex.quote
    return env


def render_template(name: str, /, **context: Any) -> str:
    """templates/`name` rendered through the one environment; a context key the
    template uses but was not given is an error (StrictUndefined)."""
    return environment().get_template(name).render(**context)


# --------------------------------------------------------------------------- helpers
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


def _local_chat_template(model: ModelSpec) -> tuple[str, set[str]] | None:
    """(chat template text, added special tokens) of a local model directory, if any."""
    if not model.local_path:
        return None
    root = Path(model.local_path)
    template = ""
    added: set[str] = set()
    try:
        jinja_file = root / "chat_template.jinja"
        if jinja_file.is_file():
            template = jinja_file.read_text(encoding="utf-8")
        cfg_file = root / "tokenizer_config.json"
        if cfg_file.is_file():
            tok_cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            if not template and isinstance(tok_cfg.get("chat_template"), str):
                template = tok_cfg["chat_template"]
            for entry in (tok_cfg.get("added_tokens_decoder") or {}).values():
                if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                    added.add(entry["content"])
        tok_file = root / "tokenizer.json"
        if tok_file.is_file():
            for entry in json.loads(tok_file.read_text(encoding="utf-8")).get("added_tokens", []):
                if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                    added.add(entry["content"])
    except (OSError, ValueError):
        return None
    return template, added


def _family_template(model: ModelSpec) -> str | None:
    """The named Axolotl chat template matching the model's family and vocabulary."""
    for key in (model.family, model.model_type):
        entry = _TEMPLATE_BY_FAMILY.get(key)
        if entry and model.vocab_size >= entry[1]:
            return entry[0]
    return None


def chat_template_choice(model: ModelSpec) -> tuple[str, list[str], str]:
    """(chat_template, eot_tokens, reason) for conversational data.

    eot_tokens is written only when the token is certain to be one token of the
    vocabulary (Axolotl refuses a split one); otherwise Axolotl uses the eos token.
    """
    local = _local_chat_template(model)
    named = _family_template(model)
    if model.chat_template or (local and local[0]):
        eot: list[str] = []
        if local is not None:
            template, added = local
            eot = [t for t in _KNOWN_EOT_TOKENS if t in template and t in added][:1]
        elif named in _EOT_BY_TEMPLATE:
            eot = [_EOT_BY_TEMPLATE[named]]
        return "tokenizer_default", eot, "the model's own chat template, as inference will use it"
    if named:
        eot = [_EOT_BY_TEMPLATE[named]] if named in _EOT_BY_TEMPLATE else []
        return named, eot, f"the tokenizer has none; {named} matches the {model.family} vocabulary"
    # No template and no family match: chatml text with the eos token ending turns
    # (eot_tokens left unset: Axolotl then uses the eos token, which always exists).
    return (
        "chatml",
        [],
        "the tokenizer has none and no family template fits its vocabulary; chatml is the common default",
    )


def _on_cuda(plan: Plan) -> bool:
    g = plan.hardware.gpu
    return g is not None and g.vendor == "nvidia"


def _tf32(plan: Plan) -> bool:
    g = plan.hardware.gpu
    return bool(
        g and g.vendor == "nvidia" and g.compute_capability and g.compute_capability >= (8, 0)
    )


def _count(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _gib(x: float) -> str:
    return f"{x:.1f} GiB"


def _default_val_set_size(plan: Plan) -> tuple[float, str]:
    rows = plan.data.rows if plan.data else 0
    if rows >= 2000:
        return 0.02, f"{rows:,} rows: hold out 2% to watch eval loss"
    if rows >= 500:
        return 0.05, f"{rows:,} rows: hold out 5% to watch eval loss"
    return 0.0, f"{rows:,} rows: too few to hold out an evaluation split"


_METHOD_REASON = {
    "full": "full fine-tune: every weight trains in 16-bit",
    "lora": "LoRA: the base stays frozen in 16-bit, small adapters train",
    "qlora": "QLoRA: the base is frozen in 4-bit NF4, small adapters train",
}
_ATTENTION_REASON = {
    "flash_attention_2": "FlashAttention-2: this GPU supports it (compute capability 8.0+)",
    "sdpa": "PyTorch SDPA: no FlashAttention-2 here",
    "eager": "eager attention",
}
_ZERO_REASON = {
    "zero1": "ZeRO-1: optimizer state sharded across the GPUs",
    "zero2": "ZeRO-2: optimizer state and gradients sharded",
    "zero3": "ZeRO-3: weights, gradients and optimizer state sharded",
}
_PRECISION_REASON = {
    "bf16": "bf16 mixed precision: this GPU supports it",
    "fp16": "fp16 mixed precision: no bf16 on this GPU",
    "fp32": "fp32: no 16-bit mixed precision on this device",
}


def _sequence_reason(plan: Plan) -> str:
    s, data = plan.setup, plan.data
    if data is not None and data.tokens.p99 <= s.sequence_len:
        return f"covers the data's p99 of {data.tokens.p99:,} tokens"
    if data is not None:
        return f"shorter than the data's p99 ({data.tokens.p99:,} tokens): longer samples are truncated"
    return "policy default"


def _packing_reason(plan: Plan) -> str:
    s, data = plan.setup, plan.data
    median = (
        f"median sample {data.tokens.p50:,} tokens" if data is not None else "sample length unknown"
    )
    if s.sample_packing:
        return f"{median}: several samples share one sequence, less padding"
    return f"{median}: packing would gain little"


# --------------------------------------------------------------------------- the config
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
    s = plan.setup
    model = plan.model
    reasons = {k: comment_text(v) for k, v in plan.reasons.items() if v}
    why: dict[str, str] = {}
    cfg: dict[str, Any] = {}

    def put(key: str, value: Any, reason: str | None = None) -> None:
        cfg[key] = value
        text = reasons.get(key) or reason
        if text:
            why[key] = comment_text(text)

    # model
    put(
        "base_model",
        base_model_ref(model),
        f"{_count(model.total_params)} parameters, {model.model_type}",
    )
    put("tokenizer_type", "AutoTokenizer", "the tokenizer shipped with the model")

    # method
    cpu_like = not _on_cuda(plan)
    if s.method != "full":
        put("adapter", s.method, reasons.get("method") or _METHOD_REASON[s.method])
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
        put("lora_dropout", s.lora_dropout, "regularizes the adapters (policy)")
        if tuple(s.lora_targets) in (("all-linear",), ()):
            put(
                "lora_target_linear",
                True,
                "adapt every Linear layer of each block (the QLoRA paper's recipe)",
            )
        else:
            put(
                "lora_target_modules",
                list(s.lora_targets),
                "every Linear layer of each block, named: quantize_moe_experts "
                "excludes lora_target_linear"
                if s.quantize_moe_experts
                else "the layers to adapt",
            )
        if s.quantize_moe_experts:
            put(
                "quantize_moe_experts",
                True,
                "4-bit MoE experts too (fused tensors bitsandbytes skips otherwise)",
            )
        if s.lora_modules_to_save:
            put(
                "lora_modules_to_save",
                list(s.lora_modules_to_save),
                "trained in full, saved with the adapter",
            )
        # Axolotl turns its fused Triton LoRA kernels on when these are unset (and warns
        # that it did); they need CUDA and do not support an 8-bit base. Say which.
        kernels = not cpu_like and not s.load_in_8bit
        if kernels:
            kernel_reason = (
                "Axolotl's fused Triton LoRA kernels (it turns them off where unsupported)"
            )
        elif cpu_like:
            kernel_reason = "the fused Triton kernels need a CUDA GPU"
        else:
            kernel_reason = "the fused kernels do not support an 8-bit base"
        for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
            put(key, kernels, kernel_reason)
    else:
        put("load_in_8bit", False, reasons.get("method") or _METHOD_REASON["full"])
        put("load_in_4bit", False, "every weight trains, so none is quantized")

    # data
    data = plan.data
    if data is None:
        raise ConfigError(
            "rendering a config needs the dataset's format",
            hint="pass --data PATH so axo-helper can detect it",
        )
    entry: dict[str, Any] = {"path": dataset_path}
    ds_type = _DS_TYPE_BY_FORMAT.get(data.file_format)
    if ds_type:
        entry["ds_type"] = ds_type
    fields = dict(data.fields or {})
    chat: tuple[str, list[str], str] | None = None
    if data.type == "alpaca":
        # Mapped keys (question/answer, prompt/completion, a system column) become
        # Axolotl's user-defined prompt type: dataset.inspect chose the field mapping
        # and the prompt format its token counts assumed, so both go through as is.
        entry["type"] = dict(fields) if fields else "alpaca"
    elif data.type == "chat_template":
        entry["type"] = "chat_template"
        for key, value in fields.items():
            entry[key] = value
        entry["roles_to_train"] = ["assistant"]
        chat = chat_template_choice(model)
    else:  # completion, input_output: their field mapping (e.g. `field: body`) as is
        entry["type"] = data.type
        for key, value in fields.items():
            entry[key] = value
    put("datasets", [entry], f"{data.type}, {data.rows:,} rows")
    if chat is not None:
        template, eot, reason = chat
        put("chat_template", template, reason)
        if eot:
            put("eot_tokens", eot, "ends each turn; trained so generation stops")
    put("dataset_prepared_path", dataset_prepared_path, "tokenized data is cached here")
    if val_set_size is None:
        val_set_size, val_reason = _default_val_set_size(plan)
    else:
        val_reason = "as requested"
    put("val_set_size", val_set_size, val_reason)
    put("train_on_inputs", False, "loss on the answers only, not the prompts")

    # sequence
    put("sequence_len", s.sequence_len, _sequence_reason(plan))
    put("sample_packing", s.sample_packing, _packing_reason(plan))
    if s.sample_packing:
        put("pad_to_sequence_len", True, "fixed shapes with packing: no allocator fragmentation")

    # batch
    put(
        "micro_batch_size",
        s.micro_batch_size,
        f"predicted peak {_gib(plan.memory.total_gib)} of {_gib(plan.budget_gib)}",
    )
    put(
        "gradient_accumulation_steps",
        plan.gradient_accumulation_steps,
        f"{s.micro_batch_size} x {plan.gradient_accumulation_steps} x {s.num_gpus} GPU = {plan.effective_batch} samples per step",
    )
    put("num_epochs", plan.num_epochs, "policy: more passes over small data, one over large data")
    # Axolotl shuffles the prepared data with `seed`; unset, every run sees another order.
    put("seed", 42, "fixed data order: two runs of this file train on the same order")

    # memory and speed
    fsdp = s.distributed == "fsdp"
    if fsdp:
        # transformers refuses gradient_checkpointing together with FSDP's own
        # activation checkpointing; FSDP2 does it per wrapped block.
        put("gradient_checkpointing", False, "FSDP checkpoints activations instead (fsdp_config)")
    else:
        put(
            "gradient_checkpointing",
            bool(s.gradient_checkpointing),
            "needed to fit: recomputes activations (~30% slower)"
            if s.gradient_checkpointing
            else "fits without it, so training runs faster",
        )
        if s.gradient_checkpointing:
            put(
                "gradient_checkpointing_kwargs",
                {"use_reentrant": False},
                "non-reentrant: works with frozen base weights and DDP",
            )
    put("attn_implementation", s.attn_implementation, _ATTENTION_REASON.get(s.attn_implementation))
    precision_reason = reasons.get("precision") or _PRECISION_REASON[s.precision]
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
    put(
        "tf32",
        _tf32(plan),
        "TF32 matmuls (Ampere and newer)" if _tf32(plan) else "no TF32 on this device",
    )
    if s.fused_cross_entropy and not cpu_like:
        put(
            "plugins",
            ["axolotl.integrations.liger.LigerPlugin"],
            "Liger kernels (fused cross-entropy)",
        )
        put("liger_fused_linear_cross_entropy", True, "never materializes the full logits")

    # optimizer
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

    # several GPUs
    ds_name: str | None = None
    if s.distributed in ("zero1", "zero2", "zero3"):
        ds_name = deepspeed_filename(s.distributed, s.cpu_offload)
        put(
            "deepspeed",
            deepspeed_path or ds_name,
            reasons.get("distributed")
            or _ZERO_REASON[s.distributed] + (", CPU offload" if s.cpu_offload else ""),
        )
    elif fsdp:
        put(
            "fsdp_version",
            2,
            reasons.get("distributed") or "FSDP2: shards weights, gradients and optimizer state",
        )
        put(
            "fsdp_config",
            {
                "offload_params": bool(s.cpu_offload),
                # Rank-0-only loading deadlocks with bitsandbytes 4-bit (Axolotl refuses it).
                "cpu_ram_efficient_loading": s.method != "qlora",
                "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                "transformer_layer_cls_to_wrap": decoder_layer_class(model),
                "state_dict_type": "FULL_STATE_DICT",
                "reshard_after_forward": True,
                "activation_checkpointing": bool(s.gradient_checkpointing),
            },
            "each transformer block wrapped and sharded; activation checkpointing "
            + ("on (needed to fit)" if s.gradient_checkpointing else "off (fits without it)"),
        )

    # output
    put("output_dir", output_dir, "checkpoints and the trained adapter or weights")
    put("saves_per_epoch", 1, "one checkpoint per epoch")
    if val_set_size:
        put("evals_per_epoch", 2, "eval loss twice per epoch")
    put("logging_steps", 1, "log every step (loss, learning rate)")
    if plan.hardware.is_cpu:
        put("dataloader_pin_memory", False, "no GPU to pin memory for")
        put(
            "dataset_num_proc",
            1,
            "one tokenizing process: extra workers each re-import torch on CPU",
        )
    if run_dir is not None:
        plugins = [*list(cfg.get("plugins", [])), PLUGIN]
        put("plugins", plugins, "axo-helper's plugin records speed, loss and peak memory")
        put(PLUGIN_RUN_DIR_KEY, run_dir, "where the plugin writes metrics.jsonl / metrics.json")
        put(
            PLUGIN_PREDICTED_KEY,
            round(float(plan.memory.total_gib), 3),
            "the plan's predicted peak per GPU, compared with the measured one",
        )

    for key, value in (overrides or {}).items():
        cfg.pop(key, None)
        why.pop(key, None)
        put(key, value, "set by axo-helper for this run")
    return cfg, why


def deepspeed_filename(distributed: str, cpu_offload: bool) -> str:
    return f"deepspeed_{distributed}{'_offload' if cpu_offload else ''}.json"


def render_deepspeed(distributed: str, *, cpu_offload: bool = False) -> str:
    """The DeepSpeed JSON for zero1/zero2/zero3 (optionally with CPU offload).

    Batch sizes, clipping and precision are "auto": the HF Trainer fills them from the
    YAML, so a hand edit of micro_batch_size never disagrees with the JSON.
    """
    if distributed not in ("zero1", "zero2", "zero3"):
        raise ValueError(f"no DeepSpeed template for {distributed!r}")
    text = render_template(f"deepspeed/{distributed}.json.j2", offload=cpu_offload)
    json.loads(text)  # a template slip fails here, not inside DeepSpeed
    return text


def _summary(plan: Plan) -> list[str]:
    s = plan.setup
    method = {
        "full": "full fine-tune",
        "lora": f"LoRA r={s.lora_r}",
        "qlora": f"QLoRA r={s.lora_r}",
    }[s.method]
    lines = [
        f"{method} of {plan.model.name} on {plan.hardware.describe()}",
        f"{s.precision}, {s.attn_implementation}, sequence_len {s.sequence_len}"
        + (" (packed)" if s.sample_packing else "")
        + f", gradient checkpointing {'on' if s.gradient_checkpointing else 'off'}, {s.optimizer}",
        f"micro batch {s.micro_batch_size} x accumulation {plan.gradient_accumulation_steps} x {s.num_gpus} GPU"
        f" = {plan.effective_batch}; distributed: {s.distributed}",
        f"predicted peak {plan.memory.total_gib:.1f} GiB per GPU of a {plan.budget_gib:.1f} GiB budget"
        + (f" (calibrated from {plan.calibrated_from} runs)" if plan.calibrated_from else ""),
    ]
    if plan.steps_per_epoch and plan.seconds_per_epoch:
        lines.append(
            f"about {plan.steps_per_epoch:,} steps and {plan.seconds_per_epoch / 3600:.1f} h per epoch (estimate)"
        )
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    return [comment_text(line) for line in lines]


def render_plan(
    plan: Plan,
    *,
    output_dir: str,
    dataset_path: str,
    run_dir: str | None = None,
    dataset_prepared_path: str = "last_run_prepared",
    deepspeed_path: str | None = None,
    val_set_size: float | None = None,
    config_name: str = "train.yml",
    overrides: Mapping[str, Any] | None = None,
    created: _dt.date | None = None,
) -> RenderedConfig:
    """Render `plan` into a commented Axolotl YAML, parse it back and check it.

    output_dir, dataset_path, dataset_prepared_path and deepspeed_path are written as
    given: Axolotl resolves relative paths against its working directory.
    run_dir: when given, the config lists axo-helper's plugin with `axo_helper_run_dir`
    (the plugin is left out otherwise, so the file does not depend on it).
    config_name: the file name the header's commands refer to.
    """
    cfg, why = build_config(
        plan,
        output_dir=output_dir,
        dataset_path=dataset_path,
        run_dir=run_dir,
        dataset_prepared_path=dataset_prepared_path,
        deepspeed_path=deepspeed_path,
        val_set_size=val_set_size,
        overrides=overrides,
    )
    text = render_template(
        YAML_TEMPLATE,
        cfg=cfg,
        why=why,
        version=__version__,
        created=(created or _dt.date.today()).isoformat(),
        summary=_summary(plan),
        config_name=comment_text(config_name),
        extra_keys=[k for k in cfg if k in (overrides or {})],
    )
    parsed = yaml.safe_load(text)
    if parsed != cfg:
        # A template bug, never the user's fault: say which keys differ.
        missing = sorted(set(cfg) - set(parsed or {}))
        extra = sorted(set(parsed or {}) - set(cfg))
        changed = sorted(k for k in cfg if k in (parsed or {}) and parsed[k] != cfg[k])
        raise AssertionError(
            f"rendered YAML differs from the plan: missing {missing}, extra {extra}, changed {changed}"
        )

    from axo_helper.validate import schema_errors  # local: validate imports render's helpers

    errors = schema_errors(parsed, text)
    if errors:
        raise ConfigError(
            "the rendered config does not pass the schema: "
            + "; ".join(e.format() for e in errors),
            hint="this is a bug in axo-helper; please report it with the plan (--json)",
        )
    ds_json = ds_name = None
    if plan.setup.distributed in ("zero1", "zero2", "zero3"):
        ds_json = render_deepspeed(plan.setup.distributed, cpu_offload=plan.setup.cpu_offload)
        ds_name = Path(str(cfg["deepspeed"])).name
    return RenderedConfig(
        yaml_text=text,
        config=cfg,
        deepspeed_json=ds_json,
        deepspeed_filename=ds_name,
        warnings=tuple(plan.warnings),
    )


def write_config(rendered: RenderedConfig, path: str | Path, force: bool = False) -> list[Path]:
    """Write the YAML (and the DeepSpeed JSON beside it) atomically.

    Refuses to overwrite either file without force; checks both before writing
    either, so a refusal leaves nothing half-written. Returns the paths written.
    """
    from axo_helper.atomic import atomic_write_text

    target = Path(path)
    outputs: list[tuple[Path, str]] = [(target, rendered.yaml_text)]
    if rendered.deepspeed_json is not None and rendered.deepspeed_filename:
        outputs.append((target.parent / rendered.deepspeed_filename, rendered.deepspeed_json))
    if not force:
        for p, _ in outputs:
            if p.exists():
                raise OutputExistsError(f"{p} already exists", hint="pass --force to overwrite it")
    # The JSON first: a YAML on disk always has its DeepSpeed file next to it.
    for p, text in reversed(outputs):
        atomic_write_text(p, text, force=True)
    return [p for p, _ in outputs]
