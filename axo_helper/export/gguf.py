"""merged/ -> gguf/model-QUANT.gguf with llama.cpp's converter (docs/gguf.md).

    convert_merged(tools, merged_dir, quant, dest) -> dest

f32, f16, bf16 and q8_0 are written by convert_hf_to_gguf.py alone; the smaller
quantizations (q4_k_m, ...) are converted to 16 bits first, then quantized by
llama-quantize. Each step runs as a subprocess (an argv list, the running Python's
interpreter for the converter) into a hidden temporary file beside `dest`, which is
renamed into place only when every step succeeded: a killed conversion leaves no
half-written .gguf under its final name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from axo_helper.errors import AxoHelperError, ExportUsageError
from axo_helper.export.files import fsync_path, read_json, shareable
from axo_helper.export.llama_cpp import (
    CONVERTER,
    LlamaCpp,
    QuantizeNotFoundError,
    build_quantize_hint,
    registered_architectures,
)

# What convert_hf_to_gguf.py --outtype writes itself (its ternary tq1_0/tq2_0 are for
# BitNet models only).
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
# What llama-quantize makes from a 16-bit GGUF without an importance matrix.
QUANTIZE_TYPES = (
    "q6_k",
    "q5_k_m",
    "q5_k_s",
    "q5_1",
    "q5_0",
    "q4_k_m",
    "q4_k_s",
    "q4_1",
    "q4_0",
    "q3_k_l",
    "q3_k_m",
    "q3_k_s",
    "q2_k",
)
GGUF_TYPES = CONVERTER_TYPES + QUANTIZE_TYPES
TEMP_PREFIX = ".tmp-"  # hidden: a killed conversion's leftovers are recognised and removed
_TAIL_LINES = 15
_MAGIC = b"GGUF"


class GGUFConversionError(AxoHelperError):
    """The converter or llama-quantize failed; the message ends with its last lines (exit 1)."""


class GGUFUnsupportedModelError(AxoHelperError):
    """The converter does not know the model's architecture or tokenizer (exit 1)."""


@dataclass(frozen=True)
class Step:
    """One subprocess of a conversion: its argv and the environment it adds."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


def normalize_quant(quant: str) -> str:
    """'Q4_K_M' -> 'q4_k_m'; refuse a name neither tool writes."""
    name = quant.strip().lower()
    if name not in GGUF_TYPES:
        raise ExportUsageError(
            f"unknown GGUF quantization {quant!r}",
            hint=f"choose from {', '.join(GGUF_TYPES)}",
        )
    return name


def check_quant_tools(tools: LlamaCpp, quant: str) -> None:
    """Refuse, before anything is built, a quantization this llama.cpp cannot make."""
    if quant in QUANTIZE_TYPES and tools.quantize is None:
        raise QuantizeNotFoundError(
            f"GGUF {quant} needs llama.cpp's llama-quantize, which was not found "
            f"(looked in {tools.root}/build/bin and on PATH); the converter itself writes "
            f"only {', '.join(CONVERTER_TYPES)}",
            hint=build_quantize_hint(tools.root),
        )


def _converter_env(tools: LlamaCpp) -> dict[str, str]:
    """gguf-py first on PYTHONPATH: the converter needs the gguf it was released with."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(tools.gguf_py), *([path] if path else [])])}


def steps_for(
    tools: LlamaCpp,
    merged_dir: Path,
    quant: str,
    out: Path,
    *,
    name: str,
    sixteen_bit: str = "f16",
) -> list[Step]:
    """The subprocesses that write `out` (pure): one conversion, or convert + quantize.

    name: general.name in the file (the converter would take merged/'s folder name).
    """
    convert = (
        sys.executable,
        str(tools.converter),
        str(merged_dir),
        "--model-name",
        name,
        "--outtype",
    )
    env = _converter_env(tools)
    if quant in CONVERTER_TYPES:
        return [Step((*convert, quant, "--outfile", str(out)), env)]
    if tools.quantize is None:
        raise QuantizeNotFoundError(
            f"no llama-quantize for {quant}", hint=build_quantize_hint(tools.root)
        )
    wide = out.with_name(out.name + f".{sixteen_bit}")
    return [
        Step((*convert, sixteen_bit, "--outfile", str(wide)), env),
        Step((str(tools.quantize), str(wide), str(out), quant.upper()), {}),
    ]


def _architecture(merged_dir: Path) -> str | None:
    cfg = read_json(merged_dir / "config.json")
    archs = cfg.get("architectures") if isinstance(cfg, dict) else None
    return str(archs[0]) if isinstance(archs, list) and archs else None


def check_architecture(tools: LlamaCpp, merged_dir: Path) -> None:
    """Refuse a model class the converter registers no converter for (read as text)."""
    arch = _architecture(merged_dir)
    known = registered_architectures(tools)
    if arch is None or known is None or arch in known:
        return  # unknown either way: the converter itself decides, and says so
    raise GGUFUnsupportedModelError(
        f"llama.cpp's converter in {tools.root} does not support the architecture {arch}",
        hint="a newer llama.cpp may: update the checkout (git pull) or fetch a newer "
        "llama-cpp-python sdist; `python convert_hf_to_gguf.py --print-supported-models` "
        "lists what it knows",
    )


def _tail(text: str) -> str:
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join(f"  {ln}" for ln in lines[-_TAIL_LINES:])


def _failure(step: Step, code: int, output: str) -> AxoHelperError:
    tool = Path(step.argv[1] if step.argv[0] == sys.executable else step.argv[0]).name
    if "BPE pre-tokenizer was not recognized" in output:
        # The converter's own lines that matter here: the checksum, and the error.
        lines = [ln for ln in output.splitlines() if ln.strip()]
        said = [ln for ln in lines if "chkhsh" in ln] + lines[-1:]
        return GGUFUnsupportedModelError(
            f"{tool} does not recognise the model's tokenizer (its pre-tokenizer):\n"
            + _tail("\n".join(said) or output),
            hint="llama.cpp knows tokenizers by a checksum of their pre-tokenizer; a newer "
            "llama.cpp may know this one (convert_hf_to_gguf_update.py adds one)",
        )
    if "is not supported" in output and "Model " in output:
        return GGUFUnsupportedModelError(
            f"{tool} does not support this model:\n" + _tail(output),
            hint="a newer llama.cpp may: update the checkout or fetch a newer sdist",
        )
    return GGUFConversionError(
        f"{tool} failed (exit {code}); its last lines:\n" + _tail(output),
        hint="read the lines above; `pip install -r requirements.txt` in the llama.cpp "
        "directory installs what the converter imports",
    )


def _run(step: Step) -> None:
    env = {**os.environ, **step.env}
    try:
        done = subprocess.run(  # an argv list, no shell
            list(step.argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise GGUFConversionError(f"cannot run {step.argv[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        raise _failure(step, done.returncode, done.stdout)


def _check_written(path: Path, step: Step) -> None:
    try:
        with path.open("rb") as fh:
            ok = fh.read(4) == _MAGIC
    except OSError:
        ok = False
    if not ok:
        raise GGUFConversionError(
            f"{Path(step.argv[0]).name} exited 0 but wrote no GGUF file at {path}",
            hint=f"run {CONVERTER} by hand to see why",
        )


def remove_temporaries(folder: Path) -> None:
    """What a killed conversion left in gguf/: hidden .tmp-* files."""
    for stale in folder.glob(f"{TEMP_PREFIX}*"):
        stale.unlink(missing_ok=True)


def sixteen_bit_type(merged_dir: Path) -> str:
    """bf16 for a bf16 model (f16 could overflow its range), f16 otherwise."""
    cfg = read_json(merged_dir / "config.json")
    dtype = (cfg.get("dtype") or cfg.get("torch_dtype")) if isinstance(cfg, dict) else None
    return "bf16" if dtype == "bfloat16" else "f16"


def convert_merged(tools: LlamaCpp, merged_dir: Path, quant: str, dest: Path, name: str) -> Path:
    """Write dest (gguf/model-QUANT.gguf) from merged/, the model called `name` in it;
    atomic, see the module docstring."""
    check_architecture(tools, merged_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{TEMP_PREFIX}{dest.name}.{os.getpid()}")
    steps: Sequence[Step] = steps_for(
        tools, merged_dir, quant, tmp, name=name, sixteen_bit=sixteen_bit_type(merged_dir)
    )
    try:
        for step in steps:
            _run(step)
        _check_written(tmp, steps[-1])
        fsync_path(tmp)
        os.replace(tmp, dest)
    finally:
        for leftover in tmp.parent.glob(f"{tmp.name}*"):
            leftover.unlink(missing_ok=True)
    shareable(dest)
    return dest
