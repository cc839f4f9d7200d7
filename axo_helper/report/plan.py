"""The plan that ran: method, key settings and their reasons, and how to run it again.

The settings are read from axolotl.yml, the config Axolotl really ran (a --config run
has no plan); the reasons from plan.json's plan when `run` planned it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from axo_helper.config.read import batch_of, method_of, precision_of
from axo_helper.rundir import RunDir, plan_object

# The config keys the report shows, in this order (when the config sets them).
KEY_SETTINGS = (
    "base_model",
    "adapter",
    "lora_r",
    "lora_alpha",
    "sequence_len",
    "sample_packing",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "max_steps",
    "learning_rate",
    "lr_scheduler",
    "optimizer",
    "gradient_checkpointing",
    "attn_implementation",
    "val_set_size",
    "seed",
)


# Config keys whose reason the plan files under another name.
_REASON_OF = {"adapter": "method"}


def _reasons(cfg: Mapping[str, Any], plan: Mapping[str, Any] | None) -> dict[str, str]:
    """Config key -> why it has its value: the plan's reason, unless the run changed it."""
    if not plan:
        return {}
    # plan.settings: {"seed": {"value": 42, "reason": "..."}, ...}; the rest are top level.
    settings = {k: v for k, v in (plan.get("settings") or {}).items() if isinstance(v, Mapping)}
    planned = {k: v.get("value") for k, v in settings.items()}
    planned.update({k: plan[k] for k in KEY_SETTINGS if k in plan})
    why = {k: v["reason"] for k, v in settings.items() if v.get("reason")}
    why.update({k: v for k, v in (plan.get("reasons") or {}).items() if isinstance(v, str)})
    out: dict[str, str] = {}
    for key in KEY_SETTINGS:
        chose = planned.get(key)
        if chose is not None and key in cfg and chose != cfg[key]:
            out[key] = f"set for this run (the plan chose {chose})"
        elif (reason := why.get(_REASON_OF.get(key, key))) is not None:
            out[key] = reason
    return out


def plan_figures(
    run: RunDir, cfg: Mapping[str, Any], record: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`report --json`'s `plan` object (docs/report.md)."""
    plan = plan_object(record)
    micro, accumulation = batch_of(cfg)
    commands = record.get("commands") if isinstance(record, Mapping) else None
    return {
        "source": (record or {}).get("source") or ("plan" if plan else "config"),
        "method": method_of(cfg),
        "precision": precision_of(cfg),
        "hardware": (record or {}).get("hardware"),
        "effective_batch_per_gpu": micro * accumulation,
        "settings": {k: cfg[k] for k in KEY_SETTINGS if cfg.get(k) is not None},
        "reasons": _reasons(cfg, plan),
        "warnings": list(plan.get("warnings") or []) if plan else [],
        "reproduce": f"axo-helper run --config {shlex.quote(str(run.config))}",
        "axolotl_commands": list((commands or {}).get("train") or []),
    }
