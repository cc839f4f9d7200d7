"""Export a finished run: adapter/, merged/, Modelfile and manifest.json (docs/export.md).

    export_run(run_dir) -> ExportResult

reads the run directory `run` wrote (axolotl.yml, plan.json, metrics.json, output/)
and produces, next to them:

  adapter/        LoRA/QLoRA only: adapter_model.safetensors, adapter_config.json, the
                  tokenizer as trained (added tokens, chat template), README.md
  merged/         base + adapter merged (or a full fine-tune's weights), sharded
                  safetensors, config, generation_config, the trained tokenizer, README.md
  Modelfile       for `ollama create`
  manifest.json   every produced file with size and sha256; versions; plan; metrics

The merge is Axolotl's memory-efficient one (axolotl.cli.utils.lora_merge: shard by
shard, PEFT's own delta math), so peak memory is about one base shard, not the model.
For QLoRA it replays the NF4 round trip of the weights bitsandbytes quantized during
training, so merged/ computes what the trained model computed (see _nf4_scope).

Atomic: each variant is built in a hidden temporary directory beside it and renamed
into place; Modelfile and manifest.json are written atomically, the manifest last.
A killed export leaves complete variants or none; re-running completes it. A variant
that exists is never replaced without force=True.

torch, safetensors, transformers and axolotl are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from axo_helper import __version__
from axo_helper.atomic import atomic_write_text
from axo_helper.errors import AxoHelperError, ConfigError, MissingExtraError, OutputExistsError
from axo_helper.render import render_template

VARIANTS: tuple[str, ...] = ("adapter", "merged")
MANIFEST = "manifest.json"
MODELFILE = "Modelfile"
MANIFEST_VERSION = 1
DEFAULT_MAX_SHARD_SIZE = "5GB"
LOCK_FILE = ".export.lock"

# Files a tokenizer's save_pretrained may write (transformers 4.x and 5.x, fast and slow).
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
        "tokenizer.model",
        "spiece.model",
        "sentencepiece.bpe.model",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "qwen.tiktoken",
        "tokenizer.tiktoken",
    }
)
TOKENIZER_DIRS = frozenset({"additional_chat_templates"})
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# Keys of config.json that must agree between the model an adapter was trained on and
# the base it is merged into.
ARCH_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


class AdapterMismatchError(AxoHelperError):
    """The adapter in output/ was not trained on this base model."""


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the run directory, with "/"
    size: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    run_dir: Path
    method: str  # "lora", "qlora" or "full"
    built: tuple[str, ...]  # variants written by this call
    kept: tuple[str, ...]  # variants that were already there (an interrupted export)
    modelfile: Path
    manifest: Path
    files: tuple[ExportedFile, ...]
    merge: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    verified: bool = False

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(v for v in VARIANTS if v in self.built or v in self.kept)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "method": self.method,
            "variants": {
                v: {
                    "path": str(self.run_dir / v),
                    "status": "built" if v in self.built else "kept",
                }
                for v in self.variants
            },
            "modelfile": str(self.modelfile),
            "manifest": str(self.manifest),
            "files": len(self.files),
            "bytes": sum(f.size for f in self.files),
            "merge": self.merge,
            "verified": self.verified,
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class RunInfo:
    """What export needs to know about a run directory."""

    run_dir: Path
    config: dict[str, Any]  # axolotl.yml
    output_dir: Path  # Axolotl's output_dir
    base_model: str
    method: str
    plan: Any  # plan.json, or None
    metrics: dict[str, Any] | None  # metrics.json (the plugin), or None


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _resolve_output_dir(run_dir: Path, cfg: Mapping[str, Any]) -> Path:
    """Axolotl's output_dir: as written, else relative to the run dir, else run_dir/output.

    Axolotl resolves a relative output_dir against its working directory; a run
    directory that was moved still has its output/ inside it.
    """
    raw = cfg.get("output_dir")
    candidates: list[Path] = []
    if raw:
        p = Path(str(raw)).expanduser()
        candidates += [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p]
    candidates.append(run_dir / "output")
    for c in candidates:
        if c.is_dir():
            return c
    raise AxoHelperError(
        f"{run_dir} has no training output (looked in {', '.join(str(c) for c in candidates)})",
        hint="train first (`axo-helper run`), or pass the run directory that `run` created",
    )


def load_run(run_dir: Path) -> RunInfo:
    from axo_helper.axolotl_config import method_of

    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise AxoHelperError(
            f"run directory {run_dir} does not exist",
            hint="pass the directory `axo-helper run` created (runs/NAME)",
            exit_code=2,
        )
    cfg_path = run_dir / "axolotl.yml"
    if not cfg_path.is_file():
        raise ConfigError(
            f"{run_dir} has no axolotl.yml, so it is not a run directory",
            hint="pass the directory `axo-helper run` created (runs/NAME)",
        )
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {cfg_path}: {exc}") from exc
    if not isinstance(cfg, dict) or not cfg.get("base_model"):
        raise ConfigError(f"{cfg_path} has no base_model", hint="is this an Axolotl config?")
    metrics = _read_json(run_dir / "metrics.json")
    return RunInfo(
        run_dir=run_dir,
        config=cfg,
        output_dir=_resolve_output_dir(run_dir, cfg),
        base_model=str(cfg["base_model"]),
        method=method_of(cfg),
        plan=_read_json(run_dir / "plan.json"),
        metrics=metrics if isinstance(metrics, dict) else None,
    )


# --------------------------------------------------------------------------- files
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _shareable(path: Path) -> None:
    """Give a file the permissions a plain write would (temp files are created 0600).

    The export is meant to be served (vLLM, Ollama) possibly by another user.
    """
    os.chmod(path, 0o666 & ~_umask())


def _fsync_tree(root: Path) -> None:
    """Flush every file under root, then the directories, before the rename publishes it."""
    mode = 0o666 & ~_umask()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(dirpath, name), mode)
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):  # directories cannot be fsynced everywhere
            fd = os.open(dirpath, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def parse_size(value: int | str) -> int:
    """'5GB', '500MB', '2GiB' or a number of bytes -> bytes."""
    if isinstance(value, int):
        size = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(value).upper())
        if not m:
            raise AxoHelperError(
                f"cannot read the size {value!r}",
                hint="write it like 5GB, 500MB or 2GiB",
                exit_code=2,
            )
        unit = m.group(2).rstrip("B") or ""
        base = 1024 if unit.endswith("I") else 1000
        power = "KMGT".find(unit[:1]) + 1 if unit else 0
        size = int(float(m.group(1)) * base**power)
    if size <= 0:
        raise AxoHelperError(f"max shard size must be positive, got {value!r}", exit_code=2)
    return size


@contextlib.contextmanager
def _export_lock(run_dir: Path) -> Iterator[None]:
    """One export of a run at a time (the temp-dir cleanup must not hit a live export)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run unguarded
        yield
        return
    with (run_dir / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise AxoHelperError(
                f"another export of {run_dir} is running",
                hint="wait for it to finish, then run `axo-helper export` again",
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_stale(run_dir: Path) -> None:
    """Remove what a killed export left: hidden .<variant>.tmp-* / .old-* directories."""
    for v in VARIANTS:
        for stale in [*run_dir.glob(f".{v}.tmp-*"), *run_dir.glob(f".{v}.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished temp directory into place, replacing `final` if it exists.

    The old copy is renamed aside first, so at every instant `final` is either the
    complete old variant, absent, or the complete new one.
    """
    _fsync_tree(tmp)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _copy_tokenizer(src: Path, dst: Path) -> list[str]:
    """Copy the trained tokenizer from Axolotl's output_dir; drop any other tokenizer files.

    Axolotl's merge copies the base model's tokenizer; the trained one may have added
    special tokens and a chat template, and mixing files of the two would load neither.
    """
    copied = []
    for name in sorted(TOKENIZER_FILES):
        if (dst / name).is_file() and not (src / name).is_file():
            (dst / name).unlink()
    for name in sorted(TOKENIZER_FILES):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(name)
    for name in TOKENIZER_DIRS:
        if (dst / name).is_dir():
            shutil.rmtree(dst / name)
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
            copied.append(name + "/")
    if "tokenizer_config.json" not in copied:
        raise AxoHelperError(
            f"{src} has no tokenizer files (tokenizer_config.json)",
            hint="Axolotl saves the tokenizer at the end of training; did the run finish?",
        )
    return copied


# --------------------------------------------------------------------------- base model
def _base_dir(info: RunInfo) -> Path:
    """A local directory with the base model's config and weights (the hub cache for an id)."""
    local = Path(info.base_model).expanduser()
    if local.is_dir():
        return local.resolve()
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingExtraError("exporting a hub model") from exc
    try:
        path = snapshot_download(
            info.base_model,
            revision=info.config.get("revision_of_model"),
            # Weights, configs and tokenizer only: never .bin duplicates, GGUF or images.
            allow_patterns=["*.safetensors", "*.json", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
        )
    except Exception as exc:  # offline without a cache, gated, missing: all the same to the user
        raise AxoHelperError(
            f"cannot get the base model {info.base_model} to merge into: {exc}",
            hint="run where the model is in the Hugging Face cache (the training machine), "
            "or with network and HF_TOKEN for a gated model; or export only the adapter "
            "(--variant adapter)",
        ) from exc
    return Path(path)


def _weight_files(folder: Path) -> list[Path]:
    """The model's weight files, as Axolotl's merge finds them (safetensors first)."""
    for pattern in ("model*.safetensors", "pytorch_model*.bin"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def _tensor_shapes(files: Iterable[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from safetensors headers, without reading any weights."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for f in files:
        if f.suffix != ".safetensors":
            continue
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():  # noqa: SIM118 - safe_open is not a Mapping
                shapes[key] = tuple(st.get_slice(key).get_shape())
    return shapes


def check_adapter_matches_base(adapter_dir: Path, base_dir: Path, base_model: str) -> list[str]:
    """Refuse an adapter trained on another architecture or size; return soft warnings.

    Three checks, cheapest first: the adapter's own config (a LoRA), the config.json
    Axolotl saved beside the adapter against the base's, and every LoRA matrix's shape
    against the base weight it modifies (safetensors headers only).
    """
    warnings: list[str] = []
    acfg = _read_json(adapter_dir / "adapter_config.json")
    if not isinstance(acfg, dict):
        raise AxoHelperError(f"{adapter_dir}/adapter_config.json is missing or unreadable")
    if str(acfg.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterMismatchError(
            f"the adapter is a {acfg.get('peft_type')} adapter; export merges LoRA/QLoRA only",
            hint="export it with --variant adapter, or merge it with PEFT yourself",
        )
    trained_on = acfg.get("base_model_name_or_path")
    if (
        trained_on
        and str(trained_on) != base_model
        and Path(str(trained_on)).name != Path(base_model).name
    ):
        warnings.append(
            f"adapter_config.json names {trained_on} as its base, the run's config {base_model}; "
            "shapes match, so merging anyway"
        )

    base_cfg = _read_json(base_dir / "config.json")
    if not isinstance(base_cfg, dict):
        raise AxoHelperError(f"the base model {base_dir} has no readable config.json")
    trained_cfg = _read_json(adapter_dir / "config.json")
    if isinstance(trained_cfg, dict):
        diffs = [
            f"{k}: trained {trained_cfg.get(k)!r}, base {base_cfg.get(k)!r}"
            for k in ARCH_KEYS
            if k in trained_cfg
            and k in base_cfg
            and trained_cfg[k] != base_cfg[k]
            # a vocabulary resized by added tokens travels with the adapter
            and k != "vocab_size"
        ]
        if diffs:
            raise AdapterMismatchError(
                f"the adapter was trained on a different model than the base {base_model} "
                f"({'; '.join(diffs)})",
                hint="set base_model in axolotl.yml to the model the run trained on",
            )

    adapter_file = adapter_dir / "adapter_model.safetensors"
    if not adapter_file.is_file():
        return warnings  # a .bin adapter: Axolotl's merge reads it; shapes unchecked
    lora = _tensor_shapes([adapter_file])
    base = _tensor_shapes(_weight_files(base_dir))
    prefix = "base_model.model."
    bad: list[str] = []
    missing: list[str] = []
    matched = 0
    for key, shape in lora.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len(prefix) : -len(".lora_A.weight")] if key.startswith(prefix) else key
        b_shape = lora.get(key.replace(".lora_A.", ".lora_B."))
        target = base.get(module + ".weight")
        if target is None:
            missing.append(module)
            continue
        matched += 1
        if len(target) != 2 or b_shape is None:
            continue  # conv / fused experts: Axolotl's merge checks these itself
        if shape[1] != target[1] or b_shape[0] != target[0]:
            bad.append(f"{module}: adapter {b_shape[0]}x{shape[1]}, base {target[0]}x{target[1]}")
    if bad or (missing and not matched):
        detail = bad[:3] or [f"no {m}.weight in the base" for m in missing[:3]]
        raise AdapterMismatchError(
            f"the adapter does not fit the base model {base_model}: "
            + "; ".join(detail)
            + (
                f" (and {len(bad) + len(missing) - len(detail)} more)"
                if len(bad) + len(missing) > 3
                else ""
            ),
            hint="set base_model in axolotl.yml to the model the run trained on",
        )
    if missing:
        warnings.append(
            f"{len(missing)} adapter module(s) have no same-named base weight "
            f"(e.g. {missing[0]}); Axolotl's merge maps renamed weights itself"
        )
    return warnings


# --------------------------------------------------------------------------- merging
def _quantized_modules(base_dir: Path, cfg: Mapping[str, Any]) -> tuple[set[str], set[str]] | None:
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
        if not isinstance(module, torch.nn.Linear):
            continue
        parts = name.split(".")
        if any(s == name or s in parts or name.endswith("." + s) for s in skip):
            continue
        quantized.add(name)
    return quantized, known


@contextlib.contextmanager
def _nf4_scope(lora_merge: Any, modules: tuple[set[str], set[str]] | None) -> Iterator[None]:
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


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def target_dtype(cfg: Mapping[str, Any]) -> str | None:
    """The dtype merged/ is saved in: the training precision; None keeps the base's."""

    def on(v: Any) -> bool:
        return v is True or str(v).lower() == "true"

    if on(cfg.get("bf16")):
        return "bfloat16"
    if on(cfg.get("fp16")):
        return "float16"
    return None  # fp32 training, or "auto" (decided on the training machine): as stored


def _set_config_dtype(folder: Path, dtype: str) -> None:
    path = folder / "config.json"
    cfg = _read_json(path)
    if not isinstance(cfg, dict):
        return
    keys = [k for k in ("dtype", "torch_dtype") if k in cfg] or ["dtype"]
    for k in keys:
        cfg[k] = dtype
    atomic_write_text(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")


_ST_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


def _has_float_not(files: Iterable[Path], st_dtype: str) -> bool:
    """Whether any floating-point tensor in the safetensors files is not st_dtype."""
    from safetensors import safe_open

    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():  # noqa: SIM118 - safe_open is not a Mapping
                d = st.get_slice(k).get_dtype()
                if d in _ST_DTYPES.values() and d != st_dtype:
                    return True
    return False


def reshard(folder: Path, *, max_shard_size: int, dtype: str | None) -> dict[str, Any]:
    """Rewrite folder's weights as safetensors shards of at most max_shard_size, in dtype.

    Streams one tensor at a time from the current files, so memory stays within one
    output shard plus one tensor. Does nothing when every shard already fits and no
    tensor needs casting. Returns what it did.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    files = _weight_files(folder)
    if not files:
        raise AxoHelperError(f"no model weights (model*.safetensors) in {folder}")
    want = _torch_dtype(dtype) if dtype else None
    oversize = any(f.stat().st_size > max_shard_size * 1.05 for f in files)
    is_bin = any(f.suffix == ".bin" for f in files)
    needs_cast = dtype is not None and not is_bin and _has_float_not(files, _ST_DTYPES[dtype])
    if not (oversize or needs_cast or is_bin):
        return {"resharded": False, "shards": len(files)}

    def tensors() -> Iterator[tuple[str, Any]]:
        for f in files:
            if f.suffix == ".safetensors":
                with safe_open(str(f), framework="pt") as st:
                    for k in st.keys():  # noqa: SIM118
                        yield k, st.get_tensor(k)
            else:
                state = torch.load(f, map_location="cpu", weights_only=True)  # nosec: own output
                yield from state.items()
                del state

    parts: list[Path] = []
    weight_map: dict[str, str] = {}
    current: dict[str, Any] = {}
    size = total = 0
    token = secrets.token_hex(4)

    def flush() -> None:
        nonlocal current, size
        if current:
            part = folder / f".part-{token}-{len(parts):05d}.safetensors"
            save_file(current, str(part), metadata={"format": "pt"})
            parts.append(part)
            for k in current:
                weight_map[k] = part.name
        current, size = {}, 0

    for key, t in tensors():
        if want is not None and t.is_floating_point() and t.dtype != want:
            t = t.to(want)
        t = t.contiguous()
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > max_shard_size:
            flush()
        current[key] = t
        size += nbytes
        total += nbytes
    flush()

    for f in files:
        f.unlink()
    for old_index in folder.glob("*.index.json"):
        old_index.unlink()
    n = len(parts)
    names = {}
    for i, part in enumerate(parts, start=1):
        name = "model.safetensors" if n == 1 else f"model-{i:05d}-of-{n:05d}.safetensors"
        os.replace(part, folder / name)
        names[part.name] = name
    if n > 1:
        index = {
            "metadata": {"total_size": total},
            "weight_map": {k: names[v] for k, v in sorted(weight_map.items())},
        }
        atomic_write_text(
            folder / "model.safetensors.index.json", json.dumps(index, indent=2) + "\n"
        )
    if dtype:
        _set_config_dtype(folder, dtype)
    return {"resharded": True, "shards": n, "dtype": dtype}


def _release_freed_tensors() -> None:
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
def _merge_errors(qlora: bool) -> Iterator[None]:
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


def merge_lora(
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    *,
    qlora: bool,
    cfg: Mapping[str, Any],
) -> dict[str, Any]:
    """Merge with Axolotl's memory-efficient, shard-by-shard merge into out_dir."""
    try:
        import torch
        from axolotl.cli.utils import lora_merge
    except ImportError as exc:
        raise MissingExtraError("merging the adapter") from exc

    bnb_kwargs = cfg.get("bnb_config_kwargs") or {}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _release_freed_tensors()
    modules = _quantized_modules(base_dir, cfg) if qlora else None
    with _nf4_scope(lora_merge, modules), _merge_errors(qlora):
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
        "tool": f"axolotl {_version('axolotl')} merge_lora_sharded_efficient",
        "device": device,
        "nf4_round_trip": (
            None
            if not qlora
            else "quantized linears only"
            if modules is not None
            else "all 2-D weights (Axolotl default)"
        ),
    }


# --------------------------------------------------------------------------- variants
def _adapter_source(info: RunInfo) -> Path:
    out = info.output_dir
    if (out / "adapter_config.json").is_file() and (
        (out / "adapter_model.safetensors").is_file() or (out / "adapter_model.bin").is_file()
    ):
        return out
    checkpoints = sorted(
        out.glob("checkpoint-*"),
        key=lambda p: int(p.name.split("-")[-1]) if p.name.split("-")[-1].isdigit() else -1,
    )
    hint = (
        f"training did not finish; resume it (`axo-helper run --resume {info.run_dir}`)"
        if checkpoints
        else "train first (`axo-helper run`)"
    )
    raise AxoHelperError(
        f"{out} has no adapter (adapter_config.json + adapter_model.safetensors)"
        + (f"; the latest checkpoint is {checkpoints[-1].name}" if checkpoints else ""),
        hint=hint,
    )


def build_adapter(info: RunInfo, dest: Path, card: str) -> None:
    src = _adapter_source(info)
    dest.mkdir(parents=True)
    shutil.copy2(src / "adapter_config.json", dest / "adapter_config.json")
    if (src / "adapter_model.safetensors").is_file():
        shutil.copy2(src / "adapter_model.safetensors", dest / "adapter_model.safetensors")
    else:  # save_safetensors: false wrote a pickle; ship safetensors (no code on load)
        import torch
        from safetensors.torch import save_file

        state = torch.load(src / "adapter_model.bin", map_location="cpu", weights_only=True)  # nosec
        save_file(
            {k: v.contiguous() for k, v in state.items()}, str(dest / "adapter_model.safetensors")
        )
    _copy_tokenizer(info.output_dir, dest)
    (dest / "README.md").write_text(card, encoding="utf-8")


def build_merged(info: RunInfo, dest: Path, card: str, *, max_shard_size: int) -> dict[str, Any]:
    dest.mkdir(parents=True)
    dtype = target_dtype(info.config)
    if info.method == "full":
        files = _weight_files(info.output_dir)
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
        details.update(reshard(dest, max_shard_size=max_shard_size, dtype=None))
    else:
        base = _base_dir(info)
        details = merge_lora(
            base, _adapter_source(info), dest, qlora=info.method == "qlora", cfg=info.config
        )
        details.update(reshard(dest, max_shard_size=max_shard_size, dtype=dtype))
        if (base / "README.md").is_file():
            (dest / "README.md").unlink(missing_ok=True)  # the base's card; ours replaces it
    details["dtype"] = dtype or "as stored"
    _copy_tokenizer(info.output_dir, dest)
    (dest / "README.md").write_text(card, encoding="utf-8")
    return details


# --------------------------------------------------------------------------- texts
def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    return {
        "axo-helper": __version__,
        "axolotl": _version("axolotl"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "safetensors": _version("safetensors"),
        "bitsandbytes": _version("bitsandbytes"),
    }


def _plan_obj(plan: Any) -> dict[str, Any]:
    """The Plan's --json object inside plan.json, wherever `run` nested it."""
    if isinstance(plan, dict):
        if "method" in plan and "memory" in plan:
            return plan
        for key in ("plan", "final"):
            if isinstance(plan.get(key), dict):
                return _plan_obj(plan[key])
        attempts = plan.get("attempts")
        if isinstance(attempts, list) and attempts:
            return _plan_obj(attempts[-1])
    return {}


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def card_context(info: RunInfo, variant: str, *, lora_r: int | None = None) -> dict[str, Any]:
    """The facts templates/model_card.md.j2 lays out, as plain values.

    Setup rows that do not apply are None (the template leaves them out); metrics that
    were not recorded read "n/a".
    """
    cfg, plan, m = info.config, _plan_obj(info.plan), info.metrics or {}
    data = plan.get("data") if isinstance(plan.get("data"), dict) else None
    dtype = target_dtype(cfg)

    def opt(value: Any) -> str | None:
        return None if value is None else _fmt(value)

    lr = cfg.get("learning_rate")
    memory = plan.get("memory")
    tokens = plan.get("tokens_per_epoch")
    lora = None
    if info.method != "full":
        lora = {
            "rank": cfg.get("lora_r", lora_r),
            "alpha": cfg.get("lora_alpha"),
            "target_linear": bool(cfg.get("lora_target_linear")),
            "target_modules": list(cfg.get("lora_target_modules") or []),
        }
    measured = None
    if m:
        measured = {
            "device": _fmt(m.get("device")),
            "world_size": m.get("world_size", 1),
            "steps": _fmt(m.get("steps")),
            "peak_memory": _fmt(m.get("peak_memory_gib"), " GiB"),
            "peak_memory_kind": m.get("peak_memory_kind", "n/a"),
            "throughput": _fmt(m.get("tokens_per_s"), " tokens/s", 1),
            "step_time": _fmt((m.get("step_time_s") or {}).get("mean"), " s", 3),
            "final_loss": _fmt(m.get("final_loss"), "", 4),
        }
    max_lora_rank = None
    if variant == "adapter":
        # vLLM's --max-lora-rank defaults to 16: the command names it only above that.
        rank = int(cfg.get("lora_r") or lora_r or 16)
        max_lora_rank = rank if rank > 16 else None
    return {
        "name": info.run_dir.name,
        "base_model": info.base_model,
        "method": info.method,
        "variant": variant,
        "version": __version__,
        "datasets": [
            {"path": str(d.get("path")), "type": str(d.get("type", "n/a"))}
            for d in cfg.get("datasets") or []
            if isinstance(d, dict)
        ],
        "rows": _fmt(data.get("rows")) if data else None,
        "tokens_per_epoch": f"{tokens:,}" if tokens else None,
        "setup": {
            "precision": {"bfloat16": "bf16", "float16": "fp16"}.get(dtype or "", "fp32/auto"),
            "sequence_len": opt(cfg.get("sequence_len")),
            "micro_batch_size": opt(cfg.get("micro_batch_size")),
            "gradient_accumulation_steps": opt(cfg.get("gradient_accumulation_steps")),
            "learning_rate": f"{lr:g}" if isinstance(lr, (int, float)) else opt(lr),
            "num_epochs": opt(cfg.get("num_epochs")),
            "max_steps": opt(cfg.get("max_steps")),
            "optimizer": opt(cfg.get("optimizer")),
            "planned_for": opt(plan["gpu"]) if plan.get("gpu") else None,
            "predicted_gib": memory.get("total_gib") if isinstance(memory, dict) else None,
        },
        "lora": lora,
        "measured": measured,
        "max_lora_rank": max_lora_rank,
    }


def model_card(info: RunInfo, variant: str, *, lora_r: int | None = None) -> str:
    """README.md for adapter/ or merged/: what it is, how it was made, how to use it."""
    return render_template("model_card.md.j2", **card_context(info, variant, lora_r=lora_r))


# Go templates for Ollama, keyed by the chat format the Jinja template uses.
_OLLAMA_TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "chatml": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        ("<|im_start|>", "<|im_end|>"),
    ),
    "llama3": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    ),
    "gemma": (
        "{{- range .Messages }}<start_of_turn>"
        '{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}\n'
        "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n",
        ("<start_of_turn>", "<end_of_turn>"),
    ),
    "mistral": (
        '{{- range .Messages }}{{ if eq .Role "user" }}[INST] {{ .Content }} [/INST]'
        '{{ else if eq .Role "assistant" }}{{ .Content }}</s>{{ end }}{{ end }}',
        ("[INST]", "[/INST]", "</s>"),
    ),
}


# No known chat format: the prompt is sent as is.
_PLAIN_PROMPT = "{{ .Prompt }}"


def chat_format(template: str | None) -> str | None:
    """Which known chat format a Jinja chat template writes (None: unknown or absent)."""
    if not template:
        return None
    if "<|im_start|>" in template:
        return "chatml"
    if "<|start_header_id|>" in template:
        return "llama3"
    if "<start_of_turn>" in template:
        return "gemma"
    if "[INST]" in template:
        return "mistral"
    return None


def _tokenizer_facts(folder: Path) -> tuple[str | None, str | None]:
    """(chat template, eos token) of the tokenizer saved in folder."""
    template = None
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    tcfg = _read_json(folder / "tokenizer_config.json") or {}
    if template is None:
        raw = tcfg.get("chat_template") or (_read_json(folder / "chat_template.json") or {}).get(
            "chat_template"
        )
        if isinstance(raw, list):  # named templates: take the default one
            named = {t.get("name"): t.get("template") for t in raw if isinstance(t, dict)}
            raw = named.get("default") or next(iter(named.values()), None)
        template = raw if isinstance(raw, str) else None
    eos = tcfg.get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    return template, eos if isinstance(eos, str) else None


def modelfile_context(info: RunInfo, *, merged: bool, adapter: bool) -> dict[str, Any]:
    """The facts templates/Modelfile.j2 lays out: where FROM points, the Ollama
    template and the stop strings for the trained chat template's format."""
    template, eos = _tokenizer_facts(info.output_dir)
    fmt = chat_format(template)
    go, stops_t = _OLLAMA_TEMPLATES.get(fmt or "", (_PLAIN_PROMPT, ()))
    stops = list(stops_t)
    if eos and eos not in stops:
        stops.append(eos)
    base = Path(info.base_model).expanduser()
    return {
        "name": info.run_dir.name,
        "version": __version__,
        "merged": merged,
        "adapter": adapter,
        "base_model": info.base_model,
        "base_dir": str(base.resolve()) if not merged and base.is_dir() else None,
        "chat_format": fmt,
        "template_saved": bool(template),
        "ollama_template": go,
        "stops": stops,
    }


def modelfile(info: RunInfo, *, merged: bool, adapter: bool) -> str:
    """An Ollama Modelfile: FROM ./merged, or the base with ADAPTER ./adapter."""
    context = modelfile_context(info, merged=merged, adapter=adapter)
    try:
        return render_template("Modelfile.j2", **context)
    except ValueError as exc:  # the `modelfile` filter: a value no Modelfile can hold
        raise ConfigError(
            f"cannot write the Modelfile: {exc}",
            hint="rename the base model or fix the tokenizer's eos token, then export again",
        ) from exc


# --------------------------------------------------------------------------- manifest
def _files_of(run_dir: Path, names: Iterable[str]) -> list[ExportedFile]:
    out: list[ExportedFile] = []
    for name in names:
        root = run_dir / name
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in paths:
            out.append(
                ExportedFile(
                    path=p.relative_to(run_dir).as_posix(),
                    size=p.stat().st_size,
                    sha256=sha256_file(p),
                )
            )
    return out


def verify_export(run_dir: Path) -> list[str]:
    """Problems with an export (missing, resized or changed files); [] when it verifies."""
    run_dir = Path(run_dir)
    manifest = _read_json(run_dir / MANIFEST)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{run_dir / MANIFEST} is missing or unreadable"]
    problems = []
    for entry in manifest["files"]:
        path = run_dir / str(entry.get("path"))
        if not path.is_file():
            problems.append(f"{entry.get('path')}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(
                f"{entry.get('path')}: size {path.stat().st_size}, manifest {entry.get('size')}"
            )
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{entry.get('path')}: sha256 differs from the manifest")
    return problems


# --------------------------------------------------------------------------- export
def export_run(
    run_dir: Path,
    *,
    force: bool = False,
    variants: Iterable[str] = VARIANTS,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    verify: bool = True,
) -> ExportResult:
    """Export a run directory's trained model (see the module docstring).

    variants: "adapter" and/or "merged" ("adapter" is skipped for a full fine-tune).
    Variants that already exist are kept unless force; a complete export (every
    requested variant, Modelfile and manifest) is refused without force.
    """
    wanted = tuple(dict.fromkeys(variants))
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown or not wanted:
        raise AxoHelperError(
            f"unknown export variant(s) {unknown}" if unknown else "no export variant chosen",
            hint=f"choose from {', '.join(VARIANTS)}",
            exit_code=2,
        )
    shard_bytes = parse_size(max_shard_size)
    info = load_run(Path(run_dir))
    run_dir = info.run_dir
    warnings: list[str] = []
    if info.method == "full" and "adapter" in wanted:
        wanted = tuple(v for v in wanted if v != "adapter")
        if not wanted:
            raise AxoHelperError(
                "a full fine-tune has no adapter to export",
                hint="export merged/ instead",
                exit_code=2,
            )

    with _export_lock(run_dir):
        _clean_stale(run_dir)
        present = [v for v in wanted if (run_dir / v).is_dir()]
        complete = (
            len(present) == len(wanted)
            and (run_dir / MANIFEST).is_file()
            and (run_dir / MODELFILE).is_file()
        )
        if complete and not force:
            raise OutputExistsError(
                f"{run_dir} already has a complete export ({', '.join(f'{v}/' for v in wanted)}, "
                f"{MODELFILE}, {MANIFEST})",
                hint="pass --force to rebuild it",
            )
        todo = [v for v in wanted if force or v not in present]
        kept = tuple(v for v in wanted if v not in todo)

        if info.method != "full" and "merged" in todo:
            # Check before building anything: a wrong base must not cost a merge.
            warnings += check_adapter_matches_base(
                _adapter_source(info), _base_dir(info), info.base_model
            )
        lora_r = None
        if info.method != "full":
            acfg = _read_json(_adapter_source(info) / "adapter_config.json") or {}
            lora_r = acfg.get("r")

        merge_details: dict[str, Any] = {}
        built: list[str] = []
        for v in todo:
            tmp = run_dir / f".{v}.tmp-{secrets.token_hex(4)}"
            try:
                card = model_card(info, v, lora_r=lora_r)
                if v == "adapter":
                    build_adapter(info, tmp, card)
                else:
                    merge_details = build_merged(info, tmp, card, max_shard_size=shard_bytes)
                _publish(tmp, run_dir / v)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            built.append(v)

        exported = [v for v in VARIANTS if (run_dir / v).is_dir() and v in wanted]
        atomic_write_text(
            run_dir / MODELFILE,
            modelfile(info, merged="merged" in exported, adapter="adapter" in exported),
        )
        _shareable(run_dir / MODELFILE)
        files = _files_of(run_dir, [*exported, MODELFILE])
        previous = _read_json(run_dir / MANIFEST)
        if not merge_details and isinstance(previous, dict):
            merge_details = previous.get("merge") or {}
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "run": run_dir.name,
            "base_model": info.base_model,
            "method": info.method,
            "variants": exported,
            "files": [f.__dict__ for f in files],
            "versions": versions(),
            "merge": merge_details,
            "plan": info.plan,
            "metrics": info.metrics,
        }
        # Last: a manifest on disk means everything it lists was written.
        atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        _shareable(run_dir / MANIFEST)

        verified = False
        if verify:
            problems = verify_export(run_dir)
            if problems:
                raise AxoHelperError(
                    "the export does not verify against its manifest: " + "; ".join(problems[:5]),
                    hint="check the disk, then run `axo-helper export --force`",
                )
            verified = True

    return ExportResult(
        run_dir=run_dir,
        method=info.method,
        built=tuple(built),
        kept=kept,
        modelfile=run_dir / MODELFILE,
        manifest=run_dir / MANIFEST,
        files=tuple(files),
        merge=merge_details,
        warnings=tuple(warnings),
        verified=verified,
    )
