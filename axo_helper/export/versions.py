"""The versions of the packages an export was made with (manifest.json's "versions").

One call of axo_helper/versions.py replaces this module once that exists.
"""

from __future__ import annotations

from axo_helper import __version__


def package_version(dist: str) -> str | None:
    """The installed version of a distribution; None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {
        "axo-helper": __version__,
        "axolotl": package_version("axolotl"),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "peft": package_version("peft"),
        "safetensors": package_version("safetensors"),
        "bitsandbytes": package_version("bitsandbytes"),
    }
