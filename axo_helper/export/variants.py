"""Building adapter/ and merged/ into a (temporary) directory: the weights, the
trained tokenizer and the model card. Publishing them is the exporter's job.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from axo_helper.config.read import target_dtype
from axo_helper.errors import AxoHelperError
from axo_helper.export import merge, shards
from axo_helper.export.source import RunInfo, adapter_source, base_dir, base_folders_offline
from axo_helper.export.stops import GENERATION_CONFIG, stop_at_terminator, turn_terminator
from axo_helper.export.tokenizer import copy_tokenizer
from axo_helper.specs.base import FULL_WEIGHT_METHODS


def _bin_to_safetensors(src: Path, dest: Path) -> None:
    """save_safetensors: false wrote a pickle; ship safetensors (no code on load)."""
    import torch
    from safetensors.torch import save_file

    state = torch.load(src, map_location="cpu", weights_only=True)  # nosec: own output
    save_file({k: v.contiguous() for k, v in state.items()}, str(dest))


def build_adapter(info: RunInfo, dest: Path, card: str) -> None:
    src = adapter_source(info)
    dest.mkdir(parents=True)
    shutil.copy2(src / "adapter_config.json", dest / "adapter_config.json")
    if (src / "adapter_model.safetensors").is_file():
        shutil.copy2(src / "adapter_model.safetensors", dest / "adapter_model.safetensors")
    else:
        _bin_to_safetensors(src / "adapter_model.bin", dest / "adapter_model.safetensors")
    copy_tokenizer(info.output_dir, dest)
    _stop_at_turn_end(info, dest)
    (dest / "README.md").write_text(card, encoding="utf-8")


def _stop_at_turn_end(info: RunInfo, dest: Path) -> None:
    """generation_config.json that stops where the fine-tune ended its turns.

    merged/ already holds the base's (or the full fine-tune's) file; adapter/ starts
    from the one Axolotl saved in output/, else the base's, found without a download.
    """
    term = turn_terminator(info.config, info.output_dir)
    if term is not None:
        sources = [info.output_dir, *base_folders_offline(info, GENERATION_CONFIG)]
        stop_at_terminator(dest, term, sources)


def _copy_full(info: RunInfo, dest: Path, max_shard_size: int) -> dict[str, Any]:
    """A full fine-tune's weights as trained, resharded only when a shard is too large."""
    files = shards.weight_files(info.output_dir)
    if not files:
        raise AxoHelperError(
            f"{info.output_dir} has no trained weights (model*.safetensors)",
            hint="train first, or resume an interrupted run with `axo-helper run --resume`",
        )
    for f in [*files, *info.output_dir.glob("*.index.json")]:
        shutil.copy2(f, dest / f.name)
    for name in ("config.json", "generation_config.json"):
        if (info.output_dir / name).is_file():
            shutil.copy2(info.output_dir / name, dest / name)
    # A full fine-tune is saved in the dtype it trained in: keep it.
    details: dict[str, Any] = {"tool": "copy of the trained weights"}
    details.update(shards.reshard(dest, max_shard_size=max_shard_size, dtype=None))
    return details


def _merge_adapter(
    info: RunInfo, dest: Path, max_shard_size: int, dtype: str | None
) -> dict[str, Any]:
    """base + adapter through Axolotl's merge, resharded in the training dtype."""
    base = base_dir(info)
    # Looked up on the modules, so tests can replace a step (a failing merge, a kill).
    details = merge.merge_lora(
        base, adapter_source(info), dest, qlora=info.method == "qlora", cfg=info.config
    )
    details.update(shards.reshard(dest, max_shard_size=max_shard_size, dtype=dtype))
    if (base / "README.md").is_file():
        (dest / "README.md").unlink(missing_ok=True)  # the base's card; ours replaces it
    return details


def build_merged(info: RunInfo, dest: Path, card: str, *, max_shard_size: int) -> dict[str, Any]:
    dest.mkdir(parents=True)
    dtype = target_dtype(info.config)
    if info.method in FULL_WEIGHT_METHODS:  # freeze too: the trained model itself
        details = _copy_full(info, dest, max_shard_size)
    else:
        details = _merge_adapter(info, dest, max_shard_size, dtype)
    details["dtype"] = dtype or "as stored"
    copy_tokenizer(info.output_dir, dest)
    _stop_at_turn_end(info, dest)
    (dest / "README.md").write_text(card, encoding="utf-8")
    return details
