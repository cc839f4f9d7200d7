"""Check an Axolotl config: YAML, JSON Schema, Axolotl's own validation, memory.

Every problem is collected and reported at once, each as `key.path (line N):
message`; warnings (a key close to a known one, deprecated flags) are kept apart
from errors. The steps, one module each:

    lines.py    1. parse (YAML errors with line and column; every key's line)
    schema.py   2. JSON Schema for the installed Axolotl (schema/axolotl-<major.minor>.schema.json,
                   generated from its pydantic models by scripts/generate_axolotl_schema.py),
                   and key warnings with "did you mean"
    files.py       files the config points to (the DeepSpeed JSON)
    axolotl.py  3. Axolotl's `validate_config` when installed (imported only there: ~10 s)
    memory.py   4. the estimate on the given GPU, whether it fits, the edit that would
    report.py   Issue, MemoryCheck, ValidationReport
    check.py    validate_text / validate_file: all steps into one report

`render` uses steps 1-2 on every config before writing it.
"""

from __future__ import annotations

from axo_helper.validate.axolotl import axolotl_check
from axo_helper.validate.check import validate_file, validate_text
from axo_helper.validate.lines import LineMap, parse_config
from axo_helper.validate.memory import budget_gib, memory_check
from axo_helper.validate.report import Issue, MemoryCheck, ValidationReport
from axo_helper.validate.schema import key_warnings, known_keys, load_schema, schema_errors

__all__ = [
    "Issue",
    "LineMap",
    "MemoryCheck",
    "ValidationReport",
    "axolotl_check",
    "budget_gib",
    "key_warnings",
    "known_keys",
    "load_schema",
    "memory_check",
    "parse_config",
    "schema_errors",
    "validate_file",
    "validate_text",
]
