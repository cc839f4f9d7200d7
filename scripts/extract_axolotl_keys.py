#!/usr/bin/env python
"""Build step: extract Axolotl's config key names into axo_helper/schema/axolotl-keys.json.

`validate` uses the list for "did you mean ..." warnings on unknown keys and on
unknown optimizer / attention names. It is extracted here, once, and committed,
because importing Axolotl takes ~10 s and Axolotl 0.19's own
`model_json_schema()` raises (a torch dtype inside an enum); `render` and
`validate --no-axolotl` must work without Axolotl installed.

Run it after upgrading Axolotl and commit the result:

    .venv/bin/python scripts/extract_axolotl_keys.py          # rewrite the file
    .venv/bin/python scripts/extract_axolotl_keys.py --check  # exit 1 when stale

tests/test_render_grid.py runs the --check logic where Axolotl is installed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "axo_helper" / "schema" / "axolotl-keys.json"


def _field_names(model_cls: Any) -> set[str]:
    """Field names plus every alias a user may write in YAML."""
    names: set[str] = set()
    for name, field in model_cls.model_fields.items():
        names.add(name)
        if isinstance(field.alias, str):
            names.add(field.alias)
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        for choice in getattr(alias, "choices", ()) or ():
            if isinstance(choice, str):
                names.add(choice)
    return names


def _integration_keys() -> set[str]:
    """Keys the bundled Axolotl plugins add (liger_*, cut_cross_entropy, ...)."""
    import axolotl.integrations as integrations
    from pydantic import BaseModel

    keys: set[str] = set()
    for info in pkgutil.iter_modules(integrations.__path__):
        try:
            module = importlib.import_module(f"axolotl.integrations.{info.name}.args")
        except Exception:
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and obj.__name__.endswith("Args")
            ):
                keys |= _field_names(obj)
    return keys


def extract() -> dict[str, Any]:
    import axolotl
    from axolotl.utils.schemas.config import AxolotlInputConfig
    from axolotl.utils.schemas.datasets import SFTDataset
    from axolotl.utils.schemas.enums import (
        CANONICAL_ATTN_IMPLS,
        ChatTemplate,
        CustomSupportedOptimizers,
    )
    from axolotl.utils.schemas.fsdp import FSDPConfig
    from transformers.training_args import OptimizerNames

    return {
        "axolotl_version": axolotl.__version__,
        "generated_by": "scripts/extract_axolotl_keys.py",
        "config": sorted(_field_names(AxolotlInputConfig) | _integration_keys()),
        "dataset": sorted(_field_names(SFTDataset)),
        "fsdp_config": sorted(_field_names(FSDPConfig)),
        "optimizers": sorted(
            {o.value for o in OptimizerNames} | {o.value for o in CustomSupportedOptimizers}
        ),
        "attn_implementations": sorted(CANONICAL_ATTN_IMPLS),
        "chat_templates": sorted(t.value for t in ChatTemplate),
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed file is stale"
    )
    args = parser.parse_args(argv)
    text = render_json(extract())
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale; run scripts/extract_axolotl_keys.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
