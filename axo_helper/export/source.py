"""What export reads from a run directory: axolotl.yml, plan.json, metrics.json,
Axolotl's output_dir and the adapter in it, and where the base model is.

The file names and the reading of plan.json are axo_helper/rundir.py's; this module
only decides what export does when one of them is missing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.errors import AxoHelperError, ConfigError, ExportUsageError, MissingExtraError
from axo_helper.export.files import read_json
from axo_helper.rundir import RunDir, latest_checkpoint, rebound_paths
from axo_helper.shell import command
from axo_helper.yamlload import safe_load

_NOT_A_RUN_HINT = "pass the directory `axo-helper run` created (runs/NAME)"


@dataclass(frozen=True)
class RunInfo:
    """What export needs to know about a run directory."""

    run_dir: Path
    config: dict[str, Any]  # axolotl.yml
    output_dir: Path  # Axolotl's output_dir
    base_model: str
    method: str
    record: dict[str, Any] | None  # plan.json, the run record (rundir.py), or None
    metrics: dict[str, Any] | None  # metrics.json (the plugin), or None
    # Keys of axolotl.yml that named another run directory (a copy), read as this one's.
    rebound: tuple[str, ...] = ()

    @property
    def status(self) -> str | None:
        """plan.json's status ("finished", "interrupted", ...); None without a record."""
        status = (self.record or {}).get("status")
        return status if isinstance(status, str) else None


def resolve_output_dir(run_dir: Path, cfg: Mapping[str, Any]) -> Path:
    """Axolotl's output_dir: the run directory's own output/, else output_dir as written
    (relative to the run dir, then to the working directory).

    `run` always trains into RUN/output, so a copied or moved run directory exports its
    own weights, never those at the absolute path its axolotl.yml still names.
    """
    raw = cfg.get("output_dir")
    candidates: list[Path] = [RunDir(run_dir).output]
    if raw:
        p = Path(str(raw)).expanduser()
        candidates += [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p]
    for c in candidates:
        if c.is_dir():
            return c
    raise AxoHelperError(
        f"{run_dir} has no training output (looked in {', '.join(str(c) for c in candidates)})",
        hint="train first (`axo-helper run`), or pass the run directory that `run` created",
    )


def _read_config(run: RunDir) -> dict[str, Any]:
    cfg_path = run.config
    if not cfg_path.is_file():
        raise ConfigError(
            f"{run.path} has no {cfg_path.name}, so it is not a run directory",
            hint=_NOT_A_RUN_HINT,
        )
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {cfg_path}: {exc}",
            hint="it is the config `axo-helper run` wrote; restore it from a copy of the run",
        ) from None
    cfg = safe_load(text, str(cfg_path))
    if not isinstance(cfg, dict) or not cfg.get("base_model"):
        raise ConfigError(f"{cfg_path} has no base_model", hint="is this an Axolotl config?")
    return cfg


def load_run(run_dir: Path) -> RunInfo:
    """The run directory `run` wrote, read; refuses one without axolotl.yml or output."""
    from axo_helper.config.read import method_of

    run = RunDir(Path(run_dir).expanduser().resolve())
    if not run.path.is_dir():
        raise ExportUsageError(f"run directory {run.path} does not exist", hint=_NOT_A_RUN_HINT)
    cfg = _read_config(run)
    rebound = rebound_paths(run.path, cfg)
    cfg.update(rebound)
    metrics = read_json(run.metrics_summary)
    return RunInfo(
        run_dir=run.path,
        config=cfg,
        output_dir=resolve_output_dir(run.path, cfg),
        base_model=str(cfg["base_model"]),
        method=method_of(cfg),
        record=run.read_plan_record(),
        metrics=metrics if isinstance(metrics, dict) else None,
        rebound=tuple(rebound),
    )


def trained_steps(info: RunInfo) -> tuple[int | None, int | None]:
    """(the last step trained, max_steps) from metrics.jsonl, else the newest checkpoint."""
    step = total = None
    stream = RunDir(info.run_dir).metrics_stream
    with contextlib.suppress(OSError):
        with stream.open("rb") as fh:
            fh.seek(max(0, stream.stat().st_size - 65536))
            tail = fh.read().decode("utf-8", "replace").splitlines()
        for line in reversed(tail):
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict) and rec.get("event") == "step":
                    step, total = rec.get("step"), rec.get("max_steps")
                    break
    if step is None and (ckpt := latest_checkpoint(info.output_dir)) is not None:
        state = read_json(ckpt / "trainer_state.json") or {}
        step, total = state.get("global_step"), state.get("max_steps")
    ok = lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None  # noqa: E731
    return ok(step), ok(total)


def steps_done(info: RunInfo) -> str:
    """The ", step 47 of 150" in the messages of an unfinished run ("" when unknown)."""
    step, total = trained_steps(info)
    if step is None:
        return ""
    return f", step {step}" + (f" of {total}" if total else "")


def _checkpoint_step(path: Path) -> int:
    tail = path.name.split("-")[-1]
    return int(tail) if tail.isdigit() else -1


def adapter_source(info: RunInfo) -> Path:
    """The directory holding the trained adapter (Axolotl's output_dir), or a refusal."""
    out = info.output_dir
    if (out / "adapter_config.json").is_file() and (
        (out / "adapter_model.safetensors").is_file() or (out / "adapter_model.bin").is_file()
    ):
        return out
    checkpoints = sorted(out.glob("checkpoint-*"), key=_checkpoint_step)
    hint = (
        f"training did not finish; resume it (`{command('axo-helper', 'run', '--resume', info.run_dir)}`)"
        if checkpoints
        else "train first (`axo-helper run`)"
    )
    raise AxoHelperError(
        f"{out} has no adapter (adapter_config.json + adapter_model.safetensors)"
        + (f"; the latest checkpoint is {checkpoints[-1].name}" if checkpoints else ""),
        hint=hint,
    )


# safetensors refuses a larger header; a real one is a few kilobytes per hundred tensors.
_MAX_SAFETENSORS_HEADER = 100_000_000


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a .safetensors file, read from its header alone (no torch):
    None when its size is what the header describes."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < length <= min(_MAX_SAFETENSORS_HEADER, size - 8):
                return "it is not a safetensors file (its header length is impossible)"
            header = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    except (ValueError, RecursionError):  # bad UTF-8 or JSON in the header
        return "its header is not valid JSON (the file is corrupt)"
    if not isinstance(header, dict):
        return "its header is not a JSON object (the file is corrupt)"
    ends = [
        t["data_offsets"][1]
        for key, t in header.items()
        if key != "__metadata__" and isinstance(t, dict) and len(t.get("data_offsets") or ()) == 2
    ]
    expected = 8 + length + max((e for e in ends if isinstance(e, int)), default=0)
    if size != expected:
        return f"it is {size:,} bytes but its header describes {expected:,} (truncated or corrupt)"
    return None


def check_safetensors(path: Path) -> None:
    """Refuse a .safetensors file that is truncated or corrupt, before torch reads it."""
    problem = safetensors_problem(path)
    if problem:
        raise AxoHelperError(
            f"{path} is damaged: {problem}",
            hint="it lost part of its bytes (an interrupted copy or download, a full disk); "
            "copy the run directory (or download the base model) again, or retrain",
        )


def check_adapter_weights(adapter_dir: Path) -> None:
    """check_safetensors of the adapter's weights, when they are safetensors."""
    weights = adapter_dir / "adapter_model.safetensors"
    if weights.is_file():
        check_safetensors(weights)


def base_dir(info: RunInfo) -> Path:
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


def base_folders_offline(info: RunInfo, name: str) -> list[Path]:
    """Folders holding the base model's file `name` without any download: the local
    base directory, or the Hugging Face cache's snapshot of a hub id ([] when neither).

    The adapter alone must export on a machine that cannot reach the hub.
    """
    local = Path(info.base_model).expanduser()
    if local.is_dir():
        return [local.resolve()]
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(
            info.base_model, name, revision=info.config.get("revision_of_model")
        )
    except Exception:  # not a repo id, an unreadable cache: no base file then
        return []
    return [Path(found).parent] if isinstance(found, str) else []
