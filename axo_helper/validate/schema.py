"""Step 2: the JSON Schema generated from Axolotl's pydantic models, and the problems it finds.

The schema for the installed Axolotl (its version from package metadata; Axolotl is
never imported here), else the newest one shipped: scripts/generate_axolotl_schema.py
writes one per Axolotl minor version into axo_helper/schema/. Schema errors are located
by line and reported in file order; key warnings catch what the schema allows but
Axolotl ignores or deprecates: a misspelt key (with a "did you mean"), a duplicate key,
a legacy attention flag, an unknown optimizer. The key names come from the same schema.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from axo_helper.config.read import LEGACY_ATTENTION_FLAGS
from axo_helper.validate.lines import KeyPath, LineMap, dotted
from axo_helper.validate.report import Issue
from axo_helper.versions import version

_SCHEMA_FILE = re.compile(r"^axolotl-(\d+)\.(\d+)\.schema\.json$")
# The generator marks each widened integer/number/boolean node with the type it stands
# for (scripts/generate_axolotl_schema.py, LAX).
_LAX = "x-lax"
# Dataset entry models whose keys a `datasets:` entry may use.
_DATASET_DEFS = ("SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset")


@dataclass(frozen=True)
class SchemaChoice:
    """Which shipped schema validate uses, and why."""

    name: str
    axolotl: str  # "0.19"
    installed: str | None  # the installed Axolotl's version, None when not installed

    def describe(self) -> str:
        if self.installed is None:
            return f"Axolotl {self.axolotl} (generated; Axolotl is not installed)"
        if _minor(self.installed) == self.axolotl:
            return f"Axolotl {self.axolotl} (generated)"
        return (
            f"Axolotl {self.axolotl} (generated; none shipped for the installed "
            f"Axolotl {self.installed}, so the newest)"
        )


def _minor(text: str) -> str:
    return ".".join(text.split(".")[:2])


def _schema_dir() -> Any:
    return resources.files("axo_helper") / "schema"


def shipped_schemas() -> dict[tuple[int, int], str]:
    """(major, minor) -> file name, for every schema in the wheel."""
    out: dict[tuple[int, int], str] = {}
    for node in _schema_dir().iterdir():
        m = _SCHEMA_FILE.match(node.name)
        if m:
            out[(int(m.group(1)), int(m.group(2)))] = node.name
    return out


@functools.cache
def schema_choice() -> SchemaChoice:
    """The schema for the installed Axolotl's minor version, else the newest shipped."""
    shipped = shipped_schemas()
    installed = version("axolotl")
    key = None
    if installed is not None:
        parts = _minor(installed).split(".")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            key = (int(parts[0]), int(parts[1]))
    chosen = key if key in shipped else max(shipped)
    return SchemaChoice(shipped[chosen], f"{chosen[0]}.{chosen[1]}", installed)


def schema_note() -> str:
    """The report's note line, e.g. `schema: Axolotl 0.19 (generated)`."""
    return f"schema: {schema_choice().describe()}"


@functools.cache
def load_schema() -> dict[str, Any]:
    """The chosen schema (Draft 2020-12)."""
    node = _schema_dir() / schema_choice().name
    return json.loads(node.read_text(encoding="utf-8"))


def _enum(node: Mapping[str, Any]) -> list[str]:
    return sorted(str(v) for v in node.get("enum", []))


@functools.cache
def known_keys() -> dict[str, Any]:
    """Axolotl's key names and value lists, all read from the schema."""
    schema = load_schema()
    defs = schema["$defs"]
    attn = schema["properties"]["attn_implementation"]["anyOf"][0]
    return {
        "axolotl_version": schema["x-axolotl-version"],
        "config": sorted(set(schema["properties"]) | set(schema["x-plugin-keys"])),
        "dataset": sorted({k for d in _DATASET_DEFS for k in defs[d]["properties"]}),
        "fsdp_config": sorted(defs["FSDPConfig"]["properties"]),
        "optimizers": sorted(
            set(schema["x-known-values"]["optimizer"])
            | set(_enum(defs["CustomSupportedOptimizers"]))
        ),
        "attn_implementations": _enum(attn),
        "chat_templates": _enum(defs["ChatTemplate"]),
    }


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _rule_keys(rule: Mapping[str, Any]) -> list[str]:
    """Top-level property names a cross-field rule talks about, in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for name in node.get("properties", {}) or {}:
                if name not in found:
                    found.append(name)
            for k in ("if", "then", "not"):
                if k in node:
                    walk(node[k])
            for k in ("anyOf", "allOf", "oneOf"):
                for sub in node.get(k, []):
                    walk(sub)
            for name in node.get("required", []) or []:
                if name not in found:
                    found.append(name)

    walk(rule)
    return found


def _lax_type(error: Any) -> str | None:
    """The type a widened node stands for, when this error is about the value's type."""
    lax = error.schema.get(_LAX) if isinstance(error.schema, Mapping) else None
    if lax is None:
        return None
    # A widened boolean takes 0 and 1 through minimum/maximum: 2 is a type error too.
    typeish = {"type", "pattern"} | ({"minimum", "maximum"} if lax == "boolean" else set())
    return str(lax) if error.validator in typeish else None


def _leaf(error: Any) -> Any:
    """The error a person should read: "x is not valid under any of the given schemas"
    says nothing, so descend into the branch that explains it (the one whose type
    matched: "less than 0" for -1; a widened type as that type, not as a pattern)."""
    from jsonschema.exceptions import best_match

    if error.validator not in ("oneOf", "anyOf") or not error.context or _lax_type(error):
        return error
    laxed = [e for e in error.context if _lax_type(e) is not None]
    # A branch whose type matched: a non-type error, or one deeper inside the value.
    typed = [e for e in error.context if (e.validator != "type" or e.path) and e not in laxed]
    return _leaf(best_match(laxed or typed or error.context))


def _message(error: Any) -> str:
    lax = _lax_type(error)
    if lax is not None:
        return f"{error.instance!r} is not of type {lax!r}"
    if error.validator == "enum" and isinstance(error.instance, str):
        options = [str(o) for o in error.validator_value]
        close = difflib.get_close_matches(error.instance, options, n=1, cutoff=0.5) or [
            o for o in options if o.startswith(error.instance)
        ]
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{error.instance!r} is not one of {', '.join(options)}{hint}"
    return str(error.message)


def schema_errors(
    data: Mapping[str, Any], text: str | None = None, lines: LineMap | None = None
) -> list[Issue]:
    """Every JSON Schema error of a parsed config, located by line, in file order."""
    if lines is None:
        lines = LineMap(text) if text is not None else LineMap("")
    schema = load_schema()
    issues: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    for top in _validator().iter_errors(data):
        error = _leaf(top)
        path: KeyPath = tuple(error.absolute_path)
        message = _message(error)
        schema_path = list(top.absolute_schema_path)
        if schema_path[:1] == ["allOf"] and len(schema_path) > 1:
            # A cross-field rule: Axolotl's message (x-message) is the one a person
            # understands, and the first key it names is where to look. A rule without
            # one (a dataset entry's own checks) keeps the located leaf error.
            rule = schema["allOf"][schema_path[1]]
            if "x-message" in rule:
                message = rule["x-message"]
                path = tuple(top.absolute_path)
            if not path:
                present = [k for k in _rule_keys(rule) if k in data]
                if present:
                    path = (present[0],)
        key = (dotted(path), message)
        if key in seen:
            continue
        seen.add(key)
        issues.append(Issue(dotted(path), lines.line(path), message, "schema"))
    issues.sort(key=lambda i: (i.line or 0, i.path))
    return issues


def _did_you_mean(key: str, known: set[str]) -> str | None:
    if key in known:
        return None
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
    return close[0] if close else None


def key_warnings(data: Mapping[str, Any], lines: LineMap) -> list[Issue]:
    """Unknown keys close to known ones, deprecated flags, unknown optimizer names."""
    keys = known_keys()
    top = set(keys["config"])
    dataset_keys = set(keys["dataset"])
    fsdp_keys = set(keys["fsdp_config"])
    out: list[Issue] = []

    def check(mapping: Mapping[str, Any], known: set[str], prefix: KeyPath) -> None:
        for key in mapping:
            guess = _did_you_mean(str(key), known)
            if guess:
                path = (*prefix, key)
                out.append(
                    Issue(
                        dotted(path),
                        lines.line(path),
                        f"unknown key (Axolotl ignores it); did you mean {guess}?",
                        "keys",
                    )
                )

    for path, first, later in lines.duplicates:
        out.append(
            Issue(
                dotted(path),
                later,
                f"duplicate key: this value replaces the one on line {first} (YAML keeps the last)",
                "keys",
            )
        )
    check(data, top, ())
    datasets = data.get("datasets")
    # A non-list `datasets` is a schema error reported elsewhere; nothing to spell-check.
    for i, entry in enumerate(datasets if isinstance(datasets, list) else []):
        if isinstance(entry, Mapping):
            check(entry, dataset_keys, ("datasets", i))
    if isinstance(data.get("fsdp_config"), Mapping):
        check(data["fsdp_config"], fsdp_keys, ("fsdp_config",))

    out.extend(_setting_warnings(data, lines, keys))
    return sorted(out, key=lambda i: (i.line or 0, i.path))


def _setting_warnings(
    data: Mapping[str, Any], lines: LineMap, keys: Mapping[str, Any]
) -> list[Issue]:
    """Settings Axolotl accepts but should not be given: legacy attention flags, an
    unknown optimizer name, fsdp_config without fsdp_version."""
    out: list[Issue] = []
    for flag, impl in LEGACY_ATTENTION_FLAGS.items():
        if data.get(flag) is True:
            out.append(
                Issue(
                    flag,
                    lines.line((flag,)),
                    f"deprecated in Axolotl 0.19; use attn_implementation: {impl}",
                    "keys",
                )
            )
    optimizer = data.get("optimizer")
    if isinstance(optimizer, str) and optimizer not in keys["optimizers"]:
        guess = difflib.get_close_matches(optimizer, keys["optimizers"], n=1, cutoff=0.75)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        out.append(
            Issue(
                "optimizer",
                lines.line(("optimizer",)),
                f"unknown optimizer {optimizer!r}{hint}",
                "keys",
            )
        )
    if isinstance(data.get("fsdp_config"), Mapping) and data.get("fsdp_version") is None:
        out.append(
            Issue(
                "fsdp_config",
                lines.line(("fsdp_config",)),
                "no fsdp_version: Axolotl falls back to the deprecated FSDP1; add fsdp_version: 2",
                "keys",
            )
        )
    return out
