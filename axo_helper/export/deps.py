"""The packages of the train extra each export step needs, checked before anything is
written: a laptop install (`pip install axo-helper`) gets a message, not a traceback.

Only top-level names are looked up (importlib.util.find_spec imports nothing for
them), so the check is cheap and keeps torch out of the process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from axo_helper.errors import MissingExtraError

# What building merged/ imports, by training method.
MERGE_MODULES: dict[str, tuple[str, ...]] = {
    "full": ("torch", "safetensors"),  # copy + reshard
    "freeze": ("torch", "safetensors"),  # a partial fine-tune saves the full model too
    "lora": ("torch", "safetensors", "transformers", "peft", "axolotl"),  # Axolotl's merge
    "qlora": ("torch", "safetensors", "transformers", "peft", "axolotl"),
}
# Converting a save_safetensors: false adapter (adapter_model.bin) to safetensors.
BIN_ADAPTER_MODULES = ("torch", "safetensors")


class MissingTrainPackagesError(MissingExtraError):
    """MissingExtraError that names the packages it found missing."""

    def __init__(self, what: str, missing: Sequence[str], *, also: str | None = None):
        super().__init__(what)
        names = ", ".join(missing)
        verb = "is" if len(missing) == 1 else "are"
        self.message = f"{what} needs {names} (the train extra), which {verb} not installed"
        self.args = (self.message,)
        if also:
            self.hint = f"{self.hint}; {also}"


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The top-level modules that cannot be imported here."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed install
            found = False
        if not found:
            missing.append(name)
    return missing


def require(what: str, modules: Sequence[str], *, also: str | None = None) -> None:
    """Raise MissingTrainPackagesError naming what of `modules` is not installed."""
    missing = missing_modules(modules)
    if missing:
        raise MissingTrainPackagesError(what, missing, also=also)
