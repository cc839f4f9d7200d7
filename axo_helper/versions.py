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

# The Axolotl releases axo-helper is tested with (pyproject's `train` extra says the
# same); one schema per minor version ships in axo_helper/schema/.
SUPPORTED_AXOLOTL = (">=0.19", "<0.22")

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


def _release(text: str) -> tuple[int, ...] | None:
    """The leading numeric release of a version string: "0.21.0rc1" -> (0, 21, 0)."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts) or None


def _bound(spec: str) -> tuple[str, tuple[int, ...]]:
    op = spec[:2] if spec[:2] in (">=", "<=") else spec[:1]
    release = _release(spec[len(op) :])
    assert release is not None, spec
    return op, release


def axolotl_version_warning(installed: str | None = None) -> str | None:
    """A warning when the installed Axolotl is outside SUPPORTED_AXOLOTL, else None
    (also None when Axolotl is not installed: that is reported where it matters)."""
    found = installed if installed is not None else version("axolotl")
    if found is None:
        return None
    release = _release(found)
    supported = ",".join(SUPPORTED_AXOLOTL)
    if release is None:
        return f"Axolotl {found}: cannot read its version; axo-helper is tested with axolotl{supported}"
    checks = {">=": release.__ge__, "<": release.__lt__, "<=": release.__le__, ">": release.__gt__}
    for spec in SUPPORTED_AXOLOTL:
        op, bound = _bound(spec)
        if not checks[op](bound):
            return (
                f"Axolotl {found} is outside the tested range axolotl{supported}; "
                "validation and runs may disagree with it"
            )
    return None
