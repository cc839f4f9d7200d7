"""merged/'s weights on disk: finding them, and rewriting them as safetensors shards of
a bounded size in the training dtype, one tensor in memory at a time.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from axo_helper.atomic import atomic_write_text
from axo_helper.errors import AxoHelperError
from axo_helper.export.files import read_json

# dtype name -> the safetensors header's name for it.
ST_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}
# A shard may exceed --max-shard-size by this much before it is rewritten (headers).
_SHARD_SLACK = 1.05


def weight_files(folder: Path) -> list[Path]:
    """The model's weight files, as Axolotl's merge finds them (safetensors first)."""
    for pattern in ("model*.safetensors", "pytorch_model*.bin"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def set_config_dtype(folder: Path, dtype: str) -> None:
    path = folder / "config.json"
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        return
    keys = [k for k in ("dtype", "torch_dtype") if k in cfg] or ["dtype"]
    for k in keys:
        cfg[k] = dtype
    atomic_write_text(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def has_float_not(files: Iterable[Path], st_dtype: str) -> bool:
    """Whether any floating-point tensor in the safetensors files is not st_dtype."""
    from safetensors import safe_open

    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():  # noqa: SIM118 - safe_open is not a Mapping
                d = st.get_slice(k).get_dtype()
                if d in ST_DTYPES.values() and d != st_dtype:
                    return True
    return False


def _tensors(files: Iterable[Path]) -> Iterator[tuple[str, Any]]:
    """(name, tensor) from every weight file, one tensor (or one .bin) at a time."""
    import torch
    from safetensors import safe_open

    for f in files:
        if f.suffix == ".safetensors":
            with safe_open(str(f), framework="pt") as st:
                for k in st.keys():  # noqa: SIM118
                    yield k, st.get_tensor(k)
        else:
            state = torch.load(f, map_location="cpu", weights_only=True)  # nosec: own output
            yield from state.items()
            del state


class _ShardWriter:
    """Collects tensors into hidden .part-* files of at most max_shard_size bytes."""

    def __init__(self, folder: Path, max_shard_size: int):
        self.folder = folder
        self.max_shard_size = max_shard_size
        self.token = secrets.token_hex(4)
        self.parts: list[Path] = []
        self.weight_map: dict[str, str] = {}  # tensor -> part file name
        self.total = 0
        self._current: dict[str, Any] = {}
        self._size = 0

    def add(self, key: str, tensor: Any) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self._current and self._size + nbytes > self.max_shard_size:
            self.flush()
        self._current[key] = tensor
        self._size += nbytes
        self.total += nbytes

    def flush(self) -> None:
        from safetensors.torch import save_file

        if self._current:
            part = self.folder / f".part-{self.token}-{len(self.parts):05d}.safetensors"
            save_file(self._current, str(part), metadata={"format": "pt"})
            self.parts.append(part)
            for k in self._current:
                self.weight_map[k] = part.name
        self._current, self._size = {}, 0


def _publish_shards(folder: Path, old_files: Iterable[Path], writer: _ShardWriter) -> int:
    """Replace the old weight files and index by the written parts; return the count."""
    for f in old_files:
        f.unlink()
    for old_index in folder.glob("*.index.json"):
        old_index.unlink()
    n = len(writer.parts)
    names = {}
    for i, part in enumerate(writer.parts, start=1):
        name = "model.safetensors" if n == 1 else f"model-{i:05d}-of-{n:05d}.safetensors"
        os.replace(part, folder / name)
        names[part.name] = name
    if n > 1:
        index = {
            "metadata": {"total_size": writer.total},
            "weight_map": {k: names[v] for k, v in sorted(writer.weight_map.items())},
        }
        atomic_write_text(
            folder / "model.safetensors.index.json", json.dumps(index, indent=2) + "\n"
        )
    return n


def reshard(folder: Path, *, max_shard_size: int, dtype: str | None) -> dict[str, Any]:
    """Rewrite folder's weights as safetensors shards of at most max_shard_size, in dtype.

    Streams one tensor at a time from the current files, so memory stays within one
    output shard plus one tensor. Does nothing when every shard already fits and no
    tensor needs casting. Returns what it did.
    """
    files = weight_files(folder)
    if not files:
        raise AxoHelperError(f"no model weights (model*.safetensors) in {folder}")
    oversize = any(f.stat().st_size > max_shard_size * _SHARD_SLACK for f in files)
    is_bin = any(f.suffix == ".bin" for f in files)
    needs_cast = dtype is not None and not is_bin and has_float_not(files, ST_DTYPES[dtype])
    if not (oversize or needs_cast or is_bin):
        return {"resharded": False, "shards": len(files)}

    want = _torch_dtype(dtype) if dtype else None
    writer = _ShardWriter(folder, max_shard_size)
    for key, t in _tensors(files):
        if want is not None and t.is_floating_point() and t.dtype != want:
            t = t.to(want)
        writer.add(key, t.contiguous())
    writer.flush()
    n = _publish_shards(folder, files, writer)
    if dtype:
        set_config_dtype(folder, dtype)
    return {"resharded": True, "shards": n, "dtype": dtype}
