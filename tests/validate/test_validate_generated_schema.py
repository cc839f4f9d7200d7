"""The shipped schema is Axolotl's own, and never stricter than Axolotl's `validate_config`.

Three checks: the file is what scripts/generate_axolotl_schema.py makes from the
installed Axolotl; the widened int/float/bool nodes accept everything pydantic's lax
mode accepts; and a differential test, where configs (a corpus of realistic hand-edits
and configs generated from the schema by hypothesis) are judged by both and no config
Axolotl accepts is rejected by the schema. The Axolotl halves need the [train] extra.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axo_helper import hardware
from axo_helper.validate.lines import LineMap
from axo_helper.validate.schema import load_schema, schema_errors
from axo_helper.versions import axolotl_installed

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "base_model": "m",
    "learning_rate": 1e-4,
    "datasets": [{"path": "p", "type": "alpaca"}],
    "micro_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "num_epochs": 1,
}

# Hand-edits as experts make them, starting from Axolotl's examples. Each is judged by
# both; the ones marked True must be accepted by both (Axolotl 0.19 accepts them).
CORPUS: dict[str, tuple[dict[str, Any], bool]] = {
    "empty keys are None": (
        {
            "dataset_prepared_path": None,
            "lora_model_dir": None,
            "wandb_project": None,
            "wandb_entity": None,
            "wandb_watch": None,
            "wandb_name": None,
            "wandb_log_model": None,
            "resume_from_checkpoint": None,
        },
        True,
    ),
    "integral float warmup_steps": ({"warmup_steps": 10.0, "sequence_len": 2048.0}, True),
    "numeric strings": ({"micro_batch_size": "5", "learning_rate": "2e-5"}, True),
    "bool strings and ints": ({"bf16": "yes", "sample_packing": 1, "tf32": "false"}, True),
    "fsdp_ prefixes": (
        {
            "fsdp_version": 2,
            "fsdp_config": {"fsdp_offload_params": True, "fsdp_state_dict_type": "FULL_STATE_DICT"},
        },
        True,
    ),
    "fsdp version inside fsdp_config": ({"fsdp_config": {"version": 2}}, True),
    "deepspeed as a path": ({"deepspeed": "deepspeed_configs/zero3_bf16.json"}, True),
    "deepspeed as an object": ({"deepspeed": {"zero_optimization": {"stage": 2}}}, True),
    "legacy dataset message fields": (
        {
            "datasets": [
                {
                    "path": "p",
                    "type": "chat_template",
                    "message_field_role": "from",
                    "message_field_content": "value",
                }
            ]
        },
        True,
    ),
    "legacy attention flag": ({"flash_attention": True}, True),
    "evals_per_epoch 0": ({"evals_per_epoch": 0}, True),
    "gradient checkpointing with FSDP's": (
        {
            "gradient_checkpointing": True,
            "fsdp_version": 2,
            "fsdp_config": {"activation_checkpointing": True},
        },
        True,
    ),
    "bf16 with fp16": ({"bf16": True, "fp16": True}, True),
    "4-bit with 8-bit": ({"adapter": "lora", "load_in_4bit": True, "load_in_8bit": True}, True),
    "qat dtype alias": ({"qat": {"weight_dtype": "fp8", "activation_dtype": "int8"}}, True),
    "image resize in capitals": ({"image_resize_algorithm": "Bilinear"}, True),
    "model_type alias": ({"type_of_model": "AutoModelForCausalLM"}, True),
    "qlora merging without 4-bit": ({"adapter": "qlora", "merge_lora": True}, True),
    "dict-form tokens": ({"tokens": {"<a>": 1}}, False),
    "fractional warmup_steps": ({"warmup_steps": 10.5}, False),
    "dataset entry with a bad type": ({"datasets": [{"path": "p", "shards": "many"}]}, False),
    "short attention alias": ({"attn_implementation": "flash"}, False),
}

# The cross-field rules the schema keeps, each one Axolotl enforces (both must reject).
RULES: dict[str, dict[str, Any]] = {
    "qlora without load_in_4bit": {"adapter": "qlora"},
    "4-bit without an adapter": {"load_in_4bit": True},
    "deepspeed with fsdp": {"deepspeed": {"zero_optimization": {}}, "fsdp": ["full_shard"]},
    "attn_implementation with a legacy flag": {
        "attn_implementation": "sdpa",
        "sdp_attention": True,
    },
    "batch_size alone": {
        "batch_size": 16,
        "micro_batch_size": None,
        "gradient_accumulation_steps": None,
    },
    "nothing to train on": {"datasets": None},
    "quantize_moe_experts with lora_target_linear": {
        "adapter": "lora",
        "load_in_4bit": True,
        "quantize_moe_experts": True,
        "lora_target_linear": True,
    },
}


def config(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**BASE, **extra}.items() if v is not None or k in extra}


def _without_nones(extra: dict[str, Any]) -> dict[str, Any]:
    # `datasets: None` and friends mean "not set" for the rules; keep them absent.
    return {k: v for k, v in {**BASE, **extra}.items() if v is not None}


# --------------------------------------------------------------------------- no Axolotl
@pytest.mark.parametrize("name", [n for n, (_, ok) in CORPUS.items() if ok])
def test_the_schema_accepts_what_axolotl_accepts(name: str) -> None:
    assert schema_errors(config(CORPUS[name][0])) == []


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_kept_cross_field_rule_rejects_with_axolotls_message(name: str) -> None:
    errors = schema_errors(_without_nones(RULES[name]))
    assert errors, name
    rules = {r.get("x-message") for r in load_schema()["allOf"]}
    assert errors[0].message in rules


def test_the_schema_is_generated_for_a_named_axolotl() -> None:
    schema = load_schema()
    assert schema["x-axolotl-version"].startswith("0.")
    assert "generate_axolotl_schema.py" in schema["description"]
    assert all("x-axolotl-validator" in rule for rule in schema["allOf"])


PROBES = [True, False, 0, 1, 2, -3, 10.0, 10.5, 0.0, 1.0, "5", " 5 ", "5.0", "1e3", "-3",
          "1_000", "abc", "", "true", "Yes", "on", "off", "t", "F", "1", "0", "2", "inf",
          "nan", " 2.5 ", None, [1], {"a": 1}]  # fmt: skip


@pytest.mark.parametrize(
    ("py_type", "lax"), [(int, "integer"), (float, "number"), (bool, "boolean")]
)
def test_widened_nodes_accept_everything_pydantic_lax_mode_accepts(py_type: type, lax: str) -> None:
    from jsonschema import Draft202012Validator

    pydantic = pytest.importorskip("pydantic")
    node = _find_lax(load_schema(), lax)
    adapter = pydantic.TypeAdapter(py_type)
    accepted = []
    for value in PROBES:
        try:
            adapter.validate_python(value)
        except pydantic.ValidationError:
            continue
        accepted.append(value)
    assert accepted, py_type
    rejected = [v for v in accepted if not Draft202012Validator(node).is_valid(v)]
    assert rejected == [], (lax, rejected)
    assert not Draft202012Validator(node).is_valid("abc")  # still a type check


BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _find_lax(node: Any, lax: str) -> dict[str, Any]:
    """The first widened node of one type without bounds (a boolean's 0..1 is its own)."""
    if isinstance(node, dict):
        if node.get("x-lax") == lax and (lax == "boolean" or not any(b in node for b in BOUNDS)):
            return node
        children: list[Any] = list(node.values())
    else:
        children = list(node) if isinstance(node, list) else []
    for child in children:
        found = _find_lax(child, lax)
        if found:
            return found
    return {}


# --------------------------------------------------------------------------- with Axolotl
@pytest.fixture(scope="module")
def axolotl_rejects() -> Any:
    if not axolotl_installed():
        pytest.skip("Axolotl is not installed (the [train] extra); CI runs this")
    from axo_helper.validate.axolotl import axolotl_check

    hw = hardware.resolve("a100-80gb")

    def rejects(cfg: dict[str, Any]) -> list[str]:
        errors, _, _ = axolotl_check(copy.deepcopy(cfg), LineMap(""), hw)
        return [e.message for e in errors]

    return rejects


@pytest.mark.axolotl
def test_shipped_schema_is_what_the_installed_axolotl_generates(axolotl_rejects: Any) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_axolotl_schema", ROOT / "scripts" / "generate_axolotl_schema.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = script.output_path(script.axolotl_version())
    assert out.exists(), f"no schema shipped for Axolotl {script.axolotl_version()}: run the script"
    assert out.read_text(encoding="utf-8") == script.render_json(script.generate()), (
        f"{out.name} is stale: run scripts/generate_axolotl_schema.py"
    )
    assert script.main(["--check"]) == 0


@pytest.mark.axolotl
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_is_judged_alike_by_the_schema_and_axolotl(name: str, axolotl_rejects: Any) -> None:
    cfg = config(CORPUS[name][0])
    by_axolotl = axolotl_rejects(cfg)
    by_schema = [e.format() for e in schema_errors(copy.deepcopy(cfg))]
    if not by_axolotl:
        assert by_schema == [], f"schema stricter than Axolotl: {by_schema}"
    assert (not by_axolotl) is CORPUS[name][1], by_axolotl


@pytest.mark.axolotl
@pytest.mark.parametrize("name", sorted(RULES))
def test_each_kept_rule_is_one_axolotl_enforces(name: str, axolotl_rejects: Any) -> None:
    assert axolotl_rejects(_without_nones(RULES[name]))


def _values(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any] | None:
    """Values for one property, drawn from its scalar branches (free strings, lists and
    objects are left out: those reach Axolotl's file and hub lookups)."""
    options: list[st.SearchStrategy[Any]] = []
    for branch in node.get("anyOf", [node]):
        if "$ref" in branch:
            branch = defs[branch["$ref"].rsplit("/", 1)[1]]
        lax = branch.get("x-lax")
        if branch.get("type") == "null":
            options.append(st.none())
        elif "enum" in branch:
            options.append(st.sampled_from(branch["enum"]))
        elif "const" in branch:
            options.append(st.just(branch["const"]))
        elif lax == "integer":
            ints = st.integers(-2, 64)
            options += [ints, ints.map(float), ints.map(str)]
        elif lax == "number":
            options += [st.floats(-1, 10, allow_nan=False), st.sampled_from(["2e-5", "0.5", "3"])]
        elif lax == "boolean":
            options += [st.booleans(), st.sampled_from([0, 1, "yes", "no", "True", "off"])]
    if not options:
        return None
    return st.one_of(*options, st.just("not-a-value"))


def _generated_configs() -> st.SearchStrategy[dict[str, Any]]:
    schema = load_schema()
    props = schema["properties"]
    strategies = {
        k: s for k in sorted(props) if (s := _values(props[k], schema["$defs"])) is not None
    }
    # Keys whose validators reach for files, the hub or this machine's devices.
    for key in ("base_model", "tokenizer_config", "local_rank", "world_size", "device"):
        strategies.pop(key, None)
    keys = st.lists(st.sampled_from(sorted(strategies)), min_size=1, max_size=5, unique=True)
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: strategies[k] for k in ks}))


@pytest.mark.axolotl
@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(extra=_generated_configs())
def test_no_generated_config_axolotl_accepts_is_rejected_by_the_schema(
    extra: dict[str, Any], axolotl_rejects: Any
) -> None:
    cfg = {**BASE, **extra}
    by_schema = [e.format() for e in schema_errors(copy.deepcopy(cfg))]
    if by_schema:
        assert axolotl_rejects(cfg), f"schema stricter than Axolotl on {extra}: {by_schema}"
