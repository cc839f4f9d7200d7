"""Step 2: the shipped JSON Schema and Axolotl's key names, and the problems they find.

Schema errors are located by line and reported in file order; key warnings catch
what the schema allows but Axolotl ignores or deprecates: a misspelt key (with a
"did you mean"), a duplicate key, a legacy attention flag, an unknown optimizer.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from axo_helper.config.read import LEGACY_ATTENTION_FLAGS
from axo_helper.validate.lines import KeyPath, LineMap, dotted
from axo_helper.validate.report import Issue

SCHEMA_FILE = "axolotl-config.schema.json"
KEYS_FILE = "axolotl-keys.json"


def _schema_node(name: str) -> Any:
    return resources.files("axo_helper") / "schema" / name


@functools.cache
def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (Draft 2020-12)."""
    return json.loads(_schema_node(SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.cache
def known_keys() -> dict[str, Any]:
    """Axolotl's config key names, extracted by scripts/extract_axolotl_keys.py."""
    return json.loads(_schema_node(KEYS_FILE).read_text(encoding="utf-8"))


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


def _message(error: Any) -> str:
    from jsonschema.exceptions import best_match

    if error.validator in ("oneOf", "anyOf") and error.context:
        # "x is not valid under any of the given schemas" says nothing: report the
        # branch whose type matched (-1 for a number-or-string: "less than 0").
        typed = [e for e in error.context if e.validator != "type"]
        return _message(best_match(typed or error.context))
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
    for error in _validator().iter_errors(data):
        path: KeyPath = tuple(error.absolute_path)
        message = _message(error)
        schema_path = list(error.absolute_schema_path)
        if schema_path[:1] == ["allOf"] and len(schema_path) > 1:
            # A cross-field rule: its description is the message a person understands,
            # and the first key it names is where to look.
            rule = schema["allOf"][schema_path[1]]
            message = rule.get("description", message)
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
    schema = load_schema()
    top = set(keys["config"]) | set(schema["properties"])
    dataset_keys = set(keys["dataset"]) | set(schema["$defs"]["dataset"]["properties"])
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
        check(data["fsdp_config"], fsdp_keys | {"fsdp_version"}, ("fsdp_config",))

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
