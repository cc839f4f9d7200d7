#!/usr/bin/env python
"""Build step: write the JSON Schema `validate` checks configs against, from Axolotl's own
pydantic models, to axo_helper/schema/axolotl-<major.minor>.schema.json.

Run it in an environment with the Axolotl version to support, and commit the file:

    .venv/bin/python scripts/generate_axolotl_schema.py          # (re)write the file
    .venv/bin/python scripts/generate_axolotl_schema.py --check  # exit 1 when it differs

Needs only Axolotl and pydantic importable (Axolotl's schema modules import torch, so
torch must import too; a CPU build is enough). Nothing of axo-helper is imported, so it
runs in a bare venv with another Axolotl (0.20/0.21 on Python 3.12).

The schema is never stricter than Axolotl: it describes what pydantic accepts in lax
mode (an integer field takes 10.0, "5" or true), adds what Axolotl's `mode="before"`
validators accept that the field types cannot tell, and keeps only the cross-field
rules Axolotl's validators enforce, with Axolotl's message: those tables, each entry
naming its Axolotl validator, are in scripts/axolotl_schema_rules.py beside this file.
tests/validate/test_validate_generated_schema.py checks the result against Axolotl's
`validate_config`.
"""

from __future__ import annotations

import argparse
import ast
import copy
import enum
import importlib
import json
import pkgutil
import sys
import typing
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticSerializationError, core_schema, to_jsonable_python

# The tables of what Axolotl's validators add live beside this script; put its folder
# on the path so it also imports when loaded by file (the tests do).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import axolotl_schema_rules as rules

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "axo_helper" / "schema"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# What pydantic's lax mode turns into an int / float / bool (its conversion table;
# tests/validate/test_validate_generated_schema.py probes pydantic with the same values).
# Patterns are deliberately a little wider than pydantic: too loose is allowed, too strict is not.
INT_STRING = r"^\s*[+-]?[0-9][0-9_]*(\.0*)?\s*$"
FLOAT_STRING = (
    r"^\s*[+-]?(([0-9][0-9_]*)?\.?[0-9_]*([eE][+-]?[0-9_]+)?"
    r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*$"
)
BOOL_STRING = (
    r"^\s*([01]|[tT]([rR][uU][eE])?|[fF]([aA][lL][sS][eE])?|[yY]([eE][sS])?|[nN][oO]?"
    r"|[oO][nN]|[oO][fF][fF])\s*$"
)
# The lax marker: which pydantic type a widened node stands for, so validate can say
# "'two' is not of type 'integer'" instead of quoting a regular expression.
LAX = "x-lax"


class LaxJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema generator, widened to what lax-mode validation accepts."""

    def emit_warning(self, kind: Any, detail: str) -> None:
        # pydantic drops a default it cannot serialize (a torch dtype): expected here,
        # and a default never decides validity.
        if kind != "non-serializable-default":
            super().emit_warning(kind, detail)

    def int_schema(self, schema: core_schema.IntSchema) -> dict[str, Any]:
        out = super().int_schema(schema)
        if schema.get("strict"):
            return out
        # JSON Schema's "integer" already takes 10.0; pydantic also takes "5" and true.
        return {
            **out,
            "type": ["integer", "boolean", "string"],
            "pattern": INT_STRING,
            LAX: "integer",
        }

    def float_schema(self, schema: core_schema.FloatSchema) -> dict[str, Any]:
        out = super().float_schema(schema)
        if schema.get("strict"):
            return out
        return {
            **out,
            "type": ["number", "boolean", "string"],
            "pattern": FLOAT_STRING,
            LAX: "number",
        }

    def bool_schema(self, schema: core_schema.BoolSchema) -> dict[str, Any]:
        out = super().bool_schema(schema)
        if schema.get("strict"):
            return out
        # 0/1 (and 0.0/1.0) and the strings pydantic reads as booleans ("yes", "off", ...).
        return {
            "type": ["boolean", "integer", "string"],
            "minimum": 0,
            "maximum": 1,
            "pattern": BOOL_STRING,
            LAX: "boolean",
        }

    def dict_schema(self, schema: core_schema.DictSchema) -> dict[str, Any]:
        out = super().dict_schema(schema)
        # dict[int, str] (added_tokens_overrides) becomes patternProperties on the key
        # text; YAML gives int keys, which JSON Schema patterns cannot match (python's
        # jsonschema raises). Keep the value type for every key instead.
        patterns = out.pop("patternProperties", None)
        if patterns and "additionalProperties" not in out:
            out["additionalProperties"] = next(iter(patterns.values()))
        return out

    def enum_schema(self, schema: core_schema.EnumSchema) -> dict[str, Any]:
        # Axolotl 0.19's TorchAOQuantDType has torch.dtype values, which pydantic cannot
        # serialize (its own model_json_schema() fails here). A user writes the member
        # name, which Axolotl's before-validator maps (see VALIDATOR_ACCEPTS).
        try:
            return super().enum_schema(schema)
        except PydanticSerializationError:
            values = [_jsonable_or_name(m) for m in schema["members"]]
            return {"title": schema["cls"].__name__, "enum": values}


def _jsonable_or_name(member: enum.Enum) -> Any:
    try:
        return to_jsonable_python(member.value)
    except PydanticSerializationError:
        return member.name


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from the root's field types, by class name
    (the name pydantic gives its $defs entry)."""
    found: dict[str, type[BaseModel]] = {}

    def types(annotation: Any) -> typing.Iterator[Any]:
        yield annotation
        for arg in typing.get_args(annotation):
            yield from types(arg)

    def walk(model: type[BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = model
        for field in model.model_fields.values():
            for t in types(field.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    walk(t)

    walk(root)
    return found


def _field_names(model: type[BaseModel], name: str) -> list[str]:
    """Every key a user may write for one field: its name (when the model validates by
    name) and each alias."""
    field = model.model_fields[name]
    names = [name] if model.model_config.get("validate_by_name") or not field.alias else []
    for alias in (field.alias, field.validation_alias):
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        names += [c for c in choices if isinstance(c, str) and c not in names]
    return names or [name]


def _add_aliases(node: dict[str, Any], model: type[BaseModel]) -> None:
    """pydantic names one key per field; give every name a user may write the same
    subschema, and require none of them (any one will do)."""
    props = node.get("properties", {})
    for name in model.model_fields:
        names = _field_names(model, name)
        present = [n for n in names if n in props]
        if not present:
            continue
        for other in names:
            props.setdefault(other, props[present[0]])
        if len(names) > 1 and any(n in node.get("required", []) for n in names):
            node["required"] = [r for r in node["required"] if r not in names]


def _plugin_keys() -> list[str]:
    """Keys the bundled Axolotl plugins add (liger_*, cut_cross_entropy, ...). Axolotl
    checks them only when the plugin is listed, so they are known names, not properties."""
    import axolotl.integrations as integrations

    keys: set[str] = set()
    for info in pkgutil.iter_modules(integrations.__path__):
        try:
            module = importlib.import_module(f"axolotl.integrations.{info.name}.args")
        except Exception:  # a plugin whose optional dependency is missing here
            keys |= _plugin_keys_from_source(Path(integrations.__path__[0]) / info.name)
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and obj.__name__.endswith("Args")
            ):
                keys |= {n for f in obj.model_fields for n in _field_names(obj, f)}
    return sorted(keys)


def _plugin_keys_from_source(folder: Path) -> set[str]:
    """The field names of a plugin's *Args models read from its args.py, for a plugin
    that cannot be imported here: the key list must not depend on which optional
    packages the generating environment happens to have."""
    source = folder / "args.py"
    if not source.is_file():
        return set()
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name.endswith("Args"):
            names |= {
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    return names


def _known_values() -> dict[str, list[str]]:
    """Names Axolotl hands on unchecked, for "did you mean" warnings: `optimizer` is a
    plain str in the model and transformers checks it only when training starts."""
    from axolotl.utils.schemas.enums import CustomSupportedOptimizers
    from transformers.training_args import OptimizerNames

    return {
        "optimizer": sorted(
            {o.value for o in OptimizerNames} | {o.value for o in CustomSupportedOptimizers}
        )
    }


def axolotl_version() -> str:
    return metadata.version("axolotl")


def output_path(version: str) -> Path:
    """One file per Axolotl minor version: axolotl-0.19.schema.json."""
    major, minor = version.split(".")[:2]
    return SCHEMA_DIR / f"axolotl-{major}.{minor}.schema.json"


def generate() -> dict[str, Any]:
    """The schema for the installed Axolotl, fully generated (nothing edited by hand)."""
    from axolotl.utils.schemas.config import AxolotlInputConfig

    schema = AxolotlInputConfig.model_json_schema(schema_generator=LaxJsonSchema, mode="validation")
    schema = copy.deepcopy(schema)  # aliases below share subschemas; keep pydantic's intact
    models = _models(AxolotlInputConfig)
    _add_aliases(schema, AxolotlInputConfig)
    for name, node in schema.get("$defs", {}).items():
        if name in models:
            _add_aliases(node, models[name])
    rules.fsdp_prefixed(schema["$defs"]["FSDPConfig"])
    rules.apply_validator_accepts(schema)
    for key, validator in rules.dropped_keys().items():
        old = schema["properties"].get(key, {})
        schema["properties"][key] = {
            **{k: v for k, v in old.items() if k in ("title", "description")},
            "x-axolotl-validator": validator,
        }
    schema["properties"]["attn_implementation"] = {
        **{k: v for k, v in schema["properties"]["attn_implementation"].items() if k != "anyOf"},
        **rules.attn_implementation(),
    }
    version = axolotl_version()
    return {
        "$schema": DRAFT,
        "$id": f"https://axo-helper.dev/schema/{output_path(version).name}",
        "title": f"Axolotl {version} config",
        "description": "Generated by scripts/generate_axolotl_schema.py from Axolotl's "
        "AxolotlInputConfig; do not edit by hand.",
        "x-axolotl-version": version,
        "x-plugin-keys": _plugin_keys(),
        "x-known-values": _known_values(),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
        "allOf": rules.cross_field_rules(),
    }


def render_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the shipped file differs")
    args = parser.parse_args(argv)
    text = render_json(generate())
    out = output_path(axolotl_version())
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(
                f"{out} differs from what Axolotl {axolotl_version()} gives; "
                "run scripts/generate_axolotl_schema.py",
                file=sys.stderr,
            )
            return 1
        print(f"{out} is current")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
