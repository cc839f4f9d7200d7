"""What export reads from a run directory: axolotl.yml, plan.json, metrics.json,
Axolotl's output_dir and the adapter in it, and where the base model is.

The file names and the reading of plan.json are axo_helper/rundir.py's; this module
only decides what export does when one of them is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from axo_helper.errors import AxoHelperError, ConfigError, ExportUsageError, MissingExtraError
from axo_helper.export.files import read_json
from axo_helper.rundir import RunDir

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


def resolve_output_dir(run_dir: Path, cfg: Mapping[str, Any]) -> Path:
    """Axolotl's output_dir: as written, else relative to the run dir, else run_dir/output.

    Axolotl resolves a relative output_dir against its working directory; a run
    directory that was moved still has its output/ inside it.
    """
    raw = cfg.get("output_dir")
    candidates: list[Path] = []
    if raw:
        p = Path(str(raw)).expanduser()
        candidates += [p] if p.is_absolute() else [run_dir / p, Path.cwd() / p]
    candidates.append(RunDir(run_dir).output)
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
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {cfg_path}: {exc}") from exc
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
    metrics = read_json(run.metrics_summary)
    return RunInfo(
        run_dir=run.path,
        config=cfg,
        output_dir=resolve_output_dir(run.path, cfg),
        base_model=str(cfg["base_model"]),
        method=method_of(cfg),
        record=run.read_plan_record(),
        metrics=metrics if isinstance(metrics, dict) else None,
    )


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
        f"training did not finish; resume it (`axo-helper run --resume {info.run_dir}`)"
        if checkpoints
        else "train first (`axo-helper run`)"
    )
    raise AxoHelperError(
        f"{out} has no adapter (adapter_config.json + adapter_model.safetensors)"
        + (f"; the latest checkpoint is {checkpoints[-1].name}" if checkpoints else ""),
        hint=hint,
    )


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
