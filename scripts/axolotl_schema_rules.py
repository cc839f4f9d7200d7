"""What Axolotl's validators do beyond the field types, for scripts/generate_axolotl_schema.py.

pydantic's types say what a field accepts; Axolotl's `mode="before"` validators also
accept, drop or refuse things the types cannot tell, and its model validators tie
fields together. Each table entry here names the Axolotl validator it mirrors, so a
new Axolotl release can be checked entry by entry. Imports only Axolotl.
"""

from __future__ import annotations

from typing import Any

TRUE_STRING = r"^\s*(1|[tT]([rR][uU][eE])?|[yY]([eE][sS])?|[oO][nN])\s*$"


def _ci(word: str) -> str:
    """A case-insensitive pattern without inline flags (portable to ECMA regex)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _any_case(*words: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^(" + "|".join(_ci(w) for w in words) + ")$"}


# (model, field) -> what a field-level or model-level `mode="before"` validator also
# accepts, beyond the field's type. Each entry names the Axolotl validator.
VALIDATOR_ACCEPTS: dict[tuple[str, str], dict[str, Any]] = {
    # quantization.validate_ao_dtype maps "fp8" and "float8" to float8_e4m3fn.
    ("QATConfig", "weight_dtype"): {"enum": ["fp8", "float8"]},
    ("QATConfig", "activation_dtype"): {"enum": ["fp8", "float8"]},
    ("PTQConfig", "weight_dtype"): {"enum": ["fp8", "float8"]},
    ("PTQConfig", "activation_dtype"): {"enum": ["fp8", "float8"]},
    # MultiModalConfig.convert_image_resize_algorithm lower-cases the name first.
    ("AxolotlInputConfig", "image_resize_algorithm"): _any_case("bilinear", "bicubic", "lanczos"),
}


def dropped_keys() -> dict[str, str]:
    """Keys a before-validator removes (or moves) before any field is checked, so any
    value passes their own type: key -> the Axolotl validator that drops it."""
    from axolotl.utils.schemas.enums import LEGACY_ATTN_FLAG_TO_IMPL

    dropped = dict.fromkeys(
        LEGACY_ATTN_FLAG_TO_IMPL, "AxolotlInputConfig.normalize_attn_implementation"
    )
    # Moved to dataset_num_proc (and checked there) or dropped when that is set.
    dropped["dataset_processes"] = "AxolotlInputConfig.default_dataset_num_proc"
    return dropped


def attn_implementation() -> dict[str, Any]:
    """AxolotlInputConfig.validate_attn_implementation: a canonical name or a hub path
    with '/'; the field type says only `str`, the validator is this strict."""
    from axolotl.utils.schemas.enums import CANONICAL_ATTN_IMPLS

    return {
        "anyOf": [
            {"enum": sorted(CANONICAL_ATTN_IMPLS)},
            {"type": "string", "pattern": "/"},
            {"type": "null"},
        ]
    }


TRUE: dict[str, Any] = {
    "anyOf": [{"const": True}, {"const": 1}, {"type": "string", "pattern": TRUE_STRING}]
}
# Python truthiness of the raw value, as `data.get(key)` in a before-validator sees it.
TRUTHY: dict[str, Any] = {"not": {"enum": [None, False, 0, "", [], {}]}}


def _set(key: str, value: dict[str, Any] = TRUTHY) -> dict[str, Any]:
    return {"required": [key], "properties": {key: value}}


def cross_field_rules() -> list[dict[str, Any]]:
    """The cross-field rules Axolotl 0.19 enforces, each with its message and validator.

    Rules the old hand-written schema had and Axolotl accepts are gone: bf16 with fp16,
    load_in_4bit with load_in_8bit, gradient_checkpointing with
    fsdp_config.activation_checkpointing, deepspeed with fsdp_config (only `fsdp:` clashes).
    """
    from axolotl.utils.schemas.enums import LEGACY_ATTN_FLAG_TO_IMPL

    legacy = sorted(LEGACY_ATTN_FLAG_TO_IMPL)
    rules: list[tuple[str, str, dict[str, Any]]] = [
        (
            "LoraConfig.validate_qlora",
            "Require cfg.load_in_4bit to be True for qlora",
            {
                "if": {
                    **_set("adapter", {"const": "qlora"}),
                    "not": _set("merge_lora", TRUE),
                },
                "then": _set("load_in_4bit", TRUE),
            },
        ),
        (
            "LoraConfig.validate_adapter",
            "load_in_8bit and load_in_4bit are not supported without setting an adapter for training",
            {
                "if": {
                    "anyOf": [_set("load_in_4bit"), _set("load_in_8bit")],
                    "not": _set("inference"),
                },
                "then": _set("adapter"),
            },
        ),
        (
            "SystemValidationMixin.check_fsdp_deepspeed",
            "deepspeed and fsdp cannot be used together.",
            {"not": {"allOf": [_set("deepspeed"), _set("fsdp")]}},
        ),
        (
            "AxolotlInputConfig.normalize_attn_implementation",
            "attn_implementation cannot be combined with legacy attention flags "
            f"({', '.join(legacy)}): set only attn_implementation",
            {"not": {"allOf": [_set("attn_implementation"), {"anyOf": [_set(f) for f in legacy]}]}},
        ),
        (
            "TrainingValidationMixin.check_batch_size_fields",
            "At least two of micro_batch_size, gradient_accumulation_steps, batch_size must be set",
            {
                "if": _set("batch_size"),
                "then": {"anyOf": [_set("micro_batch_size"), _set("gradient_accumulation_steps")]},
            },
        ),
        (
            "DatasetValidationMixin.check_dataset_or_pretraining_dataset",
            "either datasets or pretraining_dataset is required",
            {
                "anyOf": [
                    _set("datasets", {"not": {"type": "null"}}),
                    _set("pretraining_dataset", {"not": {"type": "null"}}),
                ]
            },
        ),
        (
            "AxolotlInputConfig.check_quantize_moe_experts",
            "lora_target_linear is not compatible with quantize_moe_experts. "
            "Use lora_target_parameters to target expert weights instead.",
            {"not": {"allOf": [_set("quantize_moe_experts"), _set("lora_target_linear")]}},
        ),
    ]
    return [
        {"description": message, "x-message": message, "x-axolotl-validator": validator, **rule}
        for validator, message, rule in rules
    ] + _dataset_entry_rules()


def _entries(ref: str) -> dict[str, Any]:
    entry = {"anyOf": [{"$ref": f"#/$defs/{ref}"}, {"not": {"type": "object"}}]}
    return {"properties": {"datasets": {"anyOf": [{"type": "null"}, {"items": entry}]}}}


def _dataset_entry_rules() -> list[dict[str, Any]]:
    """axolotl.utils.config.validate_config builds every `datasets:` entry as one model
    before the config model sees it (DPODataset for rl dpo/ipo/simpo, KTODataset for
    kto, SyntheticDataset for type _synthetic, else SFTDataset); the config model's
    union would let an entry match any of them. Errors keep the entry's own message."""
    pref = ["dpo", "ipo", "simpo"]
    synthetic = {"required": ["type"], "properties": {"type": {"const": "_synthetic"}}}
    sft = {"anyOf": [{"$ref": "#/$defs/SFTDataset"}, synthetic, {"not": {"type": "object"}}]}
    rules = [
        ("DPODataset", {"if": _set("rl", {"enum": pref}), "then": _entries("DPODataset")}),
        ("KTODataset", {"if": _set("rl", {"const": "kto"}), "then": _entries("KTODataset")}),
        (
            "SFTDataset",
            {
                "if": {"not": _set("rl", {"enum": [*pref, "kto"]})},
                "then": {"properties": {"datasets": {"anyOf": [{"type": "null"}, {"items": sft}]}}},
            },
        ),
    ]
    return [
        {
            "description": f"validate_config builds each datasets entry as {model}",
            "x-axolotl-validator": "axolotl.utils.config.validate_config",
            **rule,
        }
        for model, rule in rules
    ]


def fsdp_prefixed(fsdp: dict[str, Any]) -> None:
    """OptimizationValidationMixin.check_fsdp_config_kwargs_prefix strips `fsdp_` from
    keys inside fsdp_config (except fsdp_version): `fsdp_offload_params` is accepted."""
    props = fsdp.get("properties", {})
    for name, sub in list(props.items()):
        if not name.startswith("fsdp_"):
            props.setdefault(f"fsdp_{name}", sub)


def apply_validator_accepts(node: dict[str, Any]) -> None:
    """Apply VALIDATOR_ACCEPTS: each extra form becomes one more anyOf branch."""
    for (model_name, field), extra in VALIDATOR_ACCEPTS.items():
        target = node if model_name == "AxolotlInputConfig" else node["$defs"].get(model_name)
        if target is None or field not in target.get("properties", {}):
            raise SystemExit(f"VALIDATOR_ACCEPTS: {model_name}.{field} is not in the schema")
        sub = target["properties"][field]
        target["properties"][field] = {
            **{k: v for k, v in sub.items() if k in ("title", "description", "default")},
            "anyOf": [{k: v for k, v in sub.items() if k not in ("title", "description")}, extra],
        }
