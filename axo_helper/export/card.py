"""The model card (README.md of adapter/ and merged/): the facts
templates/model_card.md.j2 lays out, gathered as plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from axo_helper import __version__
from axo_helper.config.read import target_dtype
from axo_helper.config.templating import render_template
from axo_helper.export.source import RunInfo, trained_steps
from axo_helper.rundir import ADAPTER, data_rows, plan_object
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


def card_context(info: RunInfo, variant: str, *, lora_r: int | None = None) -> dict[str, Any]:
    """The facts templates/model_card.md.j2 lays out, as plain values.

    Setup rows that do not apply are None (the template leaves them out); metrics that
    were not recorded read "n/a".
    """
    # A --config run has no plan object: its rows read as not recorded.
    cfg, plan, m = info.config, plan_object(info.record) or {}, _metrics(info)
    rows = data_rows(info.record)
    tokens = plan.get("tokens_per_epoch")
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
