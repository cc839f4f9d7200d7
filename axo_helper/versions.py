"""Which versions of the stack are installed, and whether Axolotl is there at all.

The one owner of "what ran this": plan.json's `versions`, the export manifest and
`validate`'s "is Axolotl installed" all read it here. Everything comes from package
metadata or an import-system lookup; nothing is imported (importing Axolotl takes
~10 s and pulls in torch).
"""

from __future__ import annotations

import importlib.util
from importlib import metadata

from axo_helper import __version__

# The union of what a run and an export depend on, in the order people read them.
DISTRIBUTIONS = (
    "axolotl",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "deepspeed",
    "safetensors",
    "bitsandbytes",
)


def version(dist: str) -> str | None:
    """The installed version of one distribution, None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """axo-helper's version and every distribution in DISTRIBUTIONS (None: not installed)."""
    return {"axo-helper": __version__, **{dist: version(dist) for dist in DISTRIBUTIONS}}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        return False


def axolotl_installed() -> bool:
    """Axolotl importable by this interpreter (found, not imported)."""
    return _found("axolotl")


def plugin_available() -> bool:
    """axo-helper's Axolotl plugin module is importable (the run directory gets metrics)."""
    return _found("axo_helper.plugin")
