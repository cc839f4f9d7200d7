"""The LoRA/QLoRA merge: Axolotl's shard-by-shard merge, with the NF4 round trip limited
to the weights bitsandbytes really quantized, and glibc told to give memory back.

Peak memory is about one base shard, not the model (docs/export.md, "Memory of the
merge"); torch, transformers and axolotl are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError, MissingExtraError
from axo_helper.export.source import check_adapter_weights
from axo_helper.versions import version

# (modules bitsandbytes made Linear4bit, all modules with a weight)
QuantizedModules = tuple[set[str], set[str]]


def _skipped(name: str, skip: set[str]) -> bool:
    parts = name.split(".")
    return any(s == name or s in parts or name.endswith("." + s) for s in skip)


def quantized_modules(base_dir: Path, cfg: Mapping[str, Any]) -> QuantizedModules | None:
    """(modules bitsandbytes made Linear4bit, all modules with a weight) for the base.

    Mirrors transformers' rule when Axolotl loads a QLoRA base: every nn.Linear except
    the output embedding, tied weights, the last module and llm_int8_skip_modules.
    Built on the meta device (no memory). None when the architecture cannot be built.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    remote = bool(cfg.get("trust_remote_code"))
    try:
        config = AutoConfig.from_pretrained(str(base_dir), trust_remote_code=remote)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=remote)
        from transformers.quantizers.base import get_keys_to_not_convert

        skip = set(get_keys_to_not_convert(model))
    except Exception:  # unknown or remote-code architectures: keep Axolotl's default
        return None
    skip |= set((cfg.get("bnb_config_kwargs") or {}).get("llm_int8_skip_modules") or ())
    skip |= set(getattr(model, "_keep_in_fp32_modules", None) or ())
    quantized: set[str] = set()
    known: set[str] = set()
    for name, module in model.named_modules():
        if "weight" in dict(module.named_parameters(recurse=False)):
            known.add(name)
        if isinstance(module, torch.nn.Linear) and not _skipped(name, skip):
            quantized.add(name)
    return quantized, known


@contextlib.contextmanager
def nf4_scope(lora_merge: Any, modules: QuantizedModules | None) -> Iterator[None]:
    """Limit Axolotl's NF4 round trip to the weights that were really quantized.

    Axolotl 0.19's simulate_nf4 round-trips every 2-D tensor, embed_tokens and lm_head
    included, but bitsandbytes never quantized those during QLoRA training: on the
    tiny test model that moved the logits by ~0.1 (as much as not simulating at all),
    while the restricted round trip matches the 4-bit model + adapter to ~3e-7
    (docs/export.md). Keys the meta model does not know (renamed checkpoint keys,
    fused experts) keep Axolotl's behaviour. The hook is Axolotl's private
    `_should_nf4_roundtrip`; without it (another Axolotl) the default applies.
    """
    original = getattr(lora_merge, "_should_nf4_roundtrip", None)
    if modules is None or original is None:
        yield
        return
    quantized, known = modules

    def should(key: str, tensor: Any, simulate_nf4: bool, simulate_nf4_experts: bool) -> bool:
        module = key[: -len(".weight")] if key.endswith(".weight") else None
        if simulate_nf4 and module in known and module not in quantized:
            return False
        return bool(original(key, tensor, simulate_nf4, simulate_nf4_experts))

    lora_merge._should_nf4_roundtrip = should
    try:
        yield
    finally:
        lora_merge._should_nf4_roundtrip = original


def release_freed_tensors() -> None:
    """Make glibc hand freed tensor memory back to the OS during the merge.

    glibc serves big allocations with mmap only until the first one is freed; then its
    threshold rises (up to 32 MiB) and later shards' tensors come from the heap, which
    keeps freed memory. Merging 10 shards of 100 MB then grew RSS by half the model
    (benchmarks/merge_rss.py: +550 MB for a 1 GB model); with a fixed 1 MiB threshold
    it stays near the shard size (+280 MB). The setting is process-wide and permanent,
    which costs a process that has finished its heavy work nothing. No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3  # <malloc.h> M_MMAP_THRESHOLD
    mallopt(m_mmap_threshold, 1 << 20)


@contextlib.contextmanager
def merge_errors(qlora: bool) -> Iterator[None]:
    """Axolotl's merge errors that the user can act on, as messages with a hint."""
    try:
        yield
    except ImportError as exc:
        raise AxoHelperError(
            f"the merge needs a package that is not installed: {exc}",
            hint="pip install bitsandbytes" if qlora else 'pip install "axo-helper[train]"',
        ) from exc
    except NotImplementedError as exc:  # AdaLoRA, VeRA, ... (Axolotl names the variant)
        raise AxoHelperError(
            f"Axolotl cannot merge this adapter shard by shard: {exc}",
            hint="export the adapter only (--variant adapter) and merge it with PEFT",
        ) from exc
    except Exception as exc:
        # safetensors' own error (a Rust exception, not importable without the package):
        # a base shard or the adapter that is truncated or not safetensors at all.
        if type(exc).__name__ != "SafetensorError":
            raise
        raise AxoHelperError(
            f"a weights file could not be read during the merge: {exc}",
            hint="a .safetensors file of the base model or the adapter is damaged; "
            "re-download the base model (or copy the run again) and export once more",
        ) from exc


def _nf4_round_trip(qlora: bool, modules: QuantizedModules | None) -> str | None:
    """manifest.json's merge.nf4_round_trip: what the round trip covered."""
    if not qlora:
        return None
    return "quantized linears only" if modules is not None else "all 2-D weights (Axolotl default)"


def merge_lora(
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    *,
    qlora: bool,
    cfg: Mapping[str, Any],
) -> dict[str, Any]:
    """Merge with Axolotl's memory-efficient, shard-by-shard merge into out_dir."""
    check_adapter_weights(adapter_dir)
    try:
        import torch
        from axolotl.cli.utils import lora_merge
    except ImportError as exc:
        raise MissingExtraError("merging the adapter") from exc

    bnb_kwargs = cfg.get("bnb_config_kwargs") or {}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    release_freed_tensors()
    modules = quantized_modules(base_dir, cfg) if qlora else None
    with nf4_scope(lora_merge, modules), merge_errors(qlora):
        lora_merge.merge_lora_sharded_efficient(
            base_model_path=base_dir,
            lora_adapter_path=adapter_dir,
            output_path=out_dir,
            device=device,
            safe_tensors=True,
            simulate_nf4=qlora,
            nf4_blocksize=bnb_kwargs.get("blocksize"),
            nf4_double_quant=bool(bnb_kwargs.get("bnb_4bit_use_double_quant", True)),
            trust_remote_code=bool(cfg.get("trust_remote_code")),
        )
    return {
        "tool": f"axolotl {version('axolotl')} merge_lora_sharded_efficient",
        "device": device,
        "nf4_round_trip": _nf4_round_trip(qlora, modules),
    }
