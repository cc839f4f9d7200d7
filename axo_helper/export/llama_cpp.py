"""Finding llama.cpp's GGUF tools: convert_hf_to_gguf.py (with its gguf-py) and, for the
smaller quantizations, the llama-quantize binary (docs/gguf.md).

Where they are looked for, first match wins:

  1. `export --llama-cpp DIR`, else the AXO_HELPER_LLAMA_CPP environment variable:
     a llama.cpp checkout, or an unpacked llama-cpp-python sdist (whose
     vendor/llama.cpp is the checkout it was released with);
  2. llama-quantize: DIR/build/bin/ (a cmake build of that checkout), then PATH.

Nothing is downloaded or built here: a missing tool is a message that says how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from axo_helper.errors import AxoHelperError, MissingPathError
from axo_helper.shell import command

ENV_VAR = "AXO_HELPER_LLAMA_CPP"
# The sdist scripts/setup.sh fetches for the tests; the version the hints name.
LLAMA_CPP_PYTHON = "0.3.36"
CONVERTER = "convert_hf_to_gguf.py"
GGUF_PY = "gguf-py"
QUANTIZE = "llama-quantize"
# The model classes the converter registers: @ModelBase.register("LlamaForCausalLM", ...)
_NO_WHEEL = ("--no-binary", ":all:", "--no-deps")  # the sdist, which vendors llama.cpp
_REGISTER = re.compile(r"@ModelBase\.register\(([^)]*)\)")


class ConverterNotFoundError(AxoHelperError):
    """No llama.cpp converter where it was looked for (exit 1)."""


class QuantizeNotFoundError(AxoHelperError):
    """A quantization that needs llama-quantize, which was not found (exit 1)."""


@dataclass(frozen=True)
class LlamaCpp:
    """One llama.cpp checkout's GGUF tools."""

    root: Path  # the directory holding convert_hf_to_gguf.py
    quantize: Path | None  # llama-quantize, when built or on PATH

    @property
    def converter(self) -> Path:
        return self.root / CONVERTER

    @property
    def gguf_py(self) -> Path:
        return self.root / GGUF_PY


def get_converter_hint() -> str:
    """How to get a converter: the sdist (no build needed) or a git clone."""
    sdist = f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
    return (
        "get llama.cpp's converter with: "
        + command("pip", "download", *_NO_WHEEL, f"llama-cpp-python=={LLAMA_CPP_PYTHON}")
        + f" && tar xzf {sdist}.tar.gz, then pass --llama-cpp {sdist} (or set {ENV_VAR}); "
        "or: git clone https://github.com/ggml-org/llama.cpp and pass --llama-cpp llama.cpp"
    )


def build_quantize_hint(root: Path | None) -> str:
    """How to build llama-quantize in a checkout (cmake and a C++ compiler)."""
    where = str(root) if root else "llama.cpp"
    build = os.path.join(where, "build")
    return (
        "build llama-quantize with: "
        + command("cmake", "-S", where, "-B", build, "-DLLAMA_CURL=OFF")
        + " && "
        + command("cmake", "--build", build, "--target", QUANTIZE, "-j")
        + " (or put llama-quantize on PATH); "
        "or choose a quantization the converter writes itself: f16, bf16, q8_0"
    )


def _checkout(path: Path) -> Path | None:
    """The llama.cpp directory in `path`: the checkout itself or an sdist's vendor/llama.cpp."""
    for candidate in (path, path / "vendor" / "llama.cpp"):
        if (candidate / CONVERTER).is_file():
            return candidate
    return None


def _quantize_in(root: Path) -> Path | None:
    for name in (QUANTIZE, "quantize"):  # llama.cpp named it `quantize` before mid-2024
        candidate = root / "build" / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(QUANTIZE)
    return Path(found) if found else None


def find_llama_cpp(explicit: Path | None = None) -> LlamaCpp:
    """The converter in --llama-cpp DIR, else in $AXO_HELPER_LLAMA_CPP; refuse clearly."""
    named = explicit if explicit is not None else os.environ.get(ENV_VAR) or None
    if named is None:
        raise ConverterNotFoundError(
            f"GGUF export needs llama.cpp's {CONVERTER}: pass --llama-cpp DIR or set {ENV_VAR}",
            hint=get_converter_hint(),
        )
    path = Path(named).expanduser()
    source = "--llama-cpp" if explicit is not None else ENV_VAR
    if not path.is_dir():
        raise MissingPathError(
            f"{source} names {path}, which is not a directory",
            hint="pass a llama.cpp checkout or an unpacked llama-cpp-python sdist; "
            + get_converter_hint(),
        )
    root = _checkout(path)
    if root is None:
        raise ConverterNotFoundError(
            f"{source} names {path}, which has no {CONVERTER} (nor vendor/llama.cpp/{CONVERTER})",
            hint=get_converter_hint(),
        )
    return LlamaCpp(root=root.resolve(), quantize=_quantize_in(root))


def registered_architectures(tools: LlamaCpp) -> set[str] | None:
    """The HF architectures the converter registers; None when they cannot be read.

    Newer checkouts keep the model classes in conversion/*.py, older ones in the
    converter itself: both are read as text, nothing is imported.
    """
    sources = [tools.converter, *sorted((tools.root / "conversion").glob("*.py"))]
    names: set[str] = set()
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for args in _REGISTER.findall(text):
            names.update(re.findall(r"[\"']([A-Za-z0-9_]+)[\"']", args))
    return names or None
