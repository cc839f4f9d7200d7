"""The model card (README.md of adapter/ and merged/): the facts
templates/model_card.md.j2 lays out, gathered as plain values.

The card PEFT/the Trainer/Axolotl wrote in output/README.md is merged in, not
replaced: its front matter (datasets, license, tags, model-index, ...), Axolotl's
badge and "See axolotl config" block, the Trainer's training procedure. Host paths
never reach the card (hub_card.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axo_helper import __version__
from axo_helper.config.read import target_dtype
from axo_helper.config.templating import render_template
from axo_helper.export import hub_card
from axo_helper.export.source import RunInfo, base_folders_offline, trained_steps
from axo_helper.rundir import ADAPTER, RunDir, data_rows, plan_object
from axo_helper.specs.base import FULL_WEIGHT_METHODS

# vLLM's --max-lora-rank default: the serve command names the rank only above it.
VLLM_DEFAULT_MAX_LORA_RANK = 16


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _opt(value: Any) -> str | None:
    return None if value is None else _fmt(value)


def _lora(cfg: Mapping[str, Any], lora_r: int | None) -> dict[str, Any]:
    return {
        "rank": cfg.get("lora_r", lora_r),
        "alpha": cfg.get("lora_alpha"),
        "target_linear": bool(cfg.get("lora_target_linear")),
        "target_modules": list(cfg.get("lora_target_modules") or []),
    }


def _measured(m: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "device": _fmt(m.get("device")),
        "world_size": m.get("world_size", 1),
        "steps": _fmt(m.get("steps")),
        "peak_memory": _fmt(m.get("peak_memory_gib"), " GiB"),
        "peak_memory_kind": m.get("peak_memory_kind", "n/a"),
        "throughput": _fmt(m.get("tokens_per_s"), " tokens/s", 1),
        "step_time": _fmt((m.get("step_time_s") or {}).get("mean"), " s", 3),
        "final_loss": _fmt(m.get("final_loss"), "", 4),
    }


def _setup(cfg: Mapping[str, Any], plan: Mapping[str, Any]) -> dict[str, Any]:
    dtype = target_dtype(cfg)
    lr = cfg.get("learning_rate")
    memory = plan.get("memory")
    return {
        "precision": {"bfloat16": "bf16", "float16": "fp16"}.get(dtype or "", "fp32/auto"),
        "sequence_len": _opt(cfg.get("sequence_len")),
        "micro_batch_size": _opt(cfg.get("micro_batch_size")),
        "gradient_accumulation_steps": _opt(cfg.get("gradient_accumulation_steps")),
        "learning_rate": f"{lr:g}" if isinstance(lr, (int, float)) else _opt(lr),
        "num_epochs": _opt(cfg.get("num_epochs")),
        "max_steps": _opt(cfg.get("max_steps")),
        "optimizer": _opt(cfg.get("optimizer")),
        "planned_for": _opt(plan["gpu"]) if plan.get("gpu") else None,
        "predicted_gib": memory.get("total_gib") if isinstance(memory, dict) else None,
    }


def _max_lora_rank(cfg: Mapping[str, Any], variant: str, lora_r: int | None) -> int | None:
    if variant != ADAPTER:
        return None
    rank = int(cfg.get("lora_r") or lora_r or VLLM_DEFAULT_MAX_LORA_RANK)
    return rank if rank > VLLM_DEFAULT_MAX_LORA_RANK else None


def _metrics(info: RunInfo) -> dict[str, Any]:
    """metrics.json; for a run that did not finish, its steps say how far it got."""
    m = dict(info.metrics or {})
    if info.status not in (None, "finished"):
        step, total = trained_steps(info)
        got = f"{step if step is not None else 'n/a'}" + (f" of {total}" if total else "")
        m["steps"] = f"{got} (training {info.status}: it did not finish)"
    return m


def _listed(front: Mapping[str, Any], key: str) -> list[Any]:
    """A front-matter list (a lone string is a list of one)."""
    value = front.get(key)
    return value if isinstance(value, list) else [value] if isinstance(value, str) else []


def _tags(info: RunInfo, variant: str, trainer: list[Any]) -> list[str]:
    """Ours, then the earlier card's; a `base_model:` tag only names a hub id, and an
    adapter's relation only on the adapter."""
    kept = []
    for tag in [str(t) for t in trainer]:
        if tag.startswith("base_model:"):
            *relation, target = tag.split(":")
            if hub_card.hub_id(target) is None or (variant != ADAPTER and "adapter" in relation):
                continue
        kept.append(tag)
    return list(dict.fromkeys(["axolotl", "axo-helper", info.method, *kept]))


def _front_matter(
    info: RunInfo, variant: str, base_id: str | None, old: dict[str, Any]
) -> dict[str, Any]:
    """The front matter in the card's order: ours first, then the earlier card's other
    keys. Local data files are no Hub datasets: left out here."""
    paths = [d.get("path") for d in info.config.get("datasets") or [] if isinstance(d, dict)]
    datasets = [d for d in [*_listed(old, "datasets"), *paths] if hub_card.hub_id(d)]
    licence = {k: old[k] for k in hub_card.LICENSE_KEYS if old.get(k)} or hub_card.base_license(
        base_folders_offline(info, "README.md")
    )
    front: dict[str, Any] = {
        "base_model": base_id,
        "library_name": "peft" if variant == ADAPTER else "transformers",
        "pipeline_tag": "text-generation",
        **licence,
        "datasets": list(dict.fromkeys(datasets)) or None,
        "tags": _tags(info, variant, _listed(old, "tags")),
    }
    for key, value in old.items():
        front.setdefault(key, value)
    if isinstance(front.get("model-index"), list):  # the Trainer names it after output_dir
        front["model-index"] = [
            {**m, "name": info.run_dir.name} if isinstance(m, dict) else m
            for m in front["model-index"]
        ]
    return {str(k): v for k, v in front.items() if v is not None}


def _layout(front: Mapping[str, Any]) -> list[tuple[str, Any, bool]]:
    """(key, value, written as a block list of strings) for the template."""
    return [
        (k, v, isinstance(v, list) and all(isinstance(x, str) for x in v)) for k, v in front.items()
    ]


def _config_text(info: RunInfo) -> str | None:
    """axolotl.yml as it ran, for a card the Trainer did not write (no "See axolotl config")."""
    try:
        return RunDir(info.run_dir).config.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _earlier_card(info: RunInfo, names: dict[str, str]) -> dict[str, Any]:
    """What the card in output/ contributes, host paths replaced."""
    trainer = hub_card.read_trainer_card(info.output_dir / "README.md")
    versions = (info.record or {}).get("versions")
    return {
        "front": trainer.front if trainer else {},
        "badge": trainer.badge if trainer else None,
        "config_block": hub_card.scrub(trainer.config_block, names) if trainer else None,
        "config_yaml": None if trainer else hub_card.scrub(_config_text(info), names),
        "axolotl_version": versions.get("axolotl") if isinstance(versions, dict) else None,
        "procedure": hub_card.scrub(trainer.procedure, names) if trainer else None,
    }


def card_context(info: RunInfo, variant: str, *, lora_r: int | None = None) -> dict[str, Any]:
    """The facts templates/model_card.md.j2 lays out, as plain values.

    Setup rows that do not apply are None (the template leaves them out); metrics that
    were not recorded read "n/a". No value holds a path of the machine it ran on.
    """
    # A --config run has no plan object: its rows read as not recorded.
    cfg, plan, m = info.config, plan_object(info.record) or {}, _metrics(info)
    rows = data_rows(info.record)
    tokens = plan.get("tokens_per_epoch")
    base_id = hub_card.base_hub_id(info.base_model)
    base_name = base_id or Path(info.base_model).expanduser().name or info.base_model
    names = hub_card.path_names(cfg, info.run_dir, info.base_model, base_name)
    earlier = _earlier_card(info, names)
    return {
        "name": info.run_dir.name,
        "base_model": base_name,
        "base_local": base_id is None and base_name != info.base_model,
        "method": info.method,
        "variant": variant,
        "version": __version__,
        "front_matter": _layout(
            hub_card.scrub(_front_matter(info, variant, base_id, earlier.pop("front")), names)
        ),
        **earlier,
        "datasets": [
            {"path": hub_card.scrub(str(d.get("path")), names), "type": str(d.get("type", "n/a"))}
            for d in cfg.get("datasets") or []
            if isinstance(d, dict)
        ],
        "rows": _fmt(rows) if rows is not None else None,
        "tokens_per_epoch": f"{tokens:,}" if tokens else None,
        "setup": _setup(cfg, plan),
        "lora": _lora(cfg, lora_r) if info.method not in FULL_WEIGHT_METHODS else None,
        "measured": _measured(m) if m else None,
        "max_lora_rank": _max_lora_rank(cfg, variant, lora_r),
    }


def model_card(info: RunInfo, variant: str, *, lora_r: int | None = None) -> str:
    """README.md for adapter/ or merged/: what it is, how it was made, how to use it."""
    return render_template("model_card.md.j2", **card_context(info, variant, lora_r=lora_r))
