"""The predicted peak GiB a run is measured against, and where it came from.

In order: the config's `axo_helper_predicted_gib`, the run directory's plan.json, else
`memory.estimate` of the config as Axolotl ran it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axo_helper.plugin.recorder import finite

PLAN_JSON = "plan.json"


def predicted_gib(cfg: Any, run_dir: Path, setup: Any) -> tuple[float | None, str]:
    """(GiB, source) of the prediction; GiB is None when there is none to be had."""
    explicit = finite(cfg.axo_helper_predicted_gib)
    if explicit and explicit > 0:
        return explicit, "config"
    found = plan_json_prediction(run_dir)
    if found:
        return found, "plan.json"
    try:
        from axo_helper.memory import estimate
    except ImportError:
        return None, "no prediction (axo_helper.memory unavailable)"
    return float(estimate(setup).total_gib), "estimate"


def plan_json_prediction(run_dir: Path) -> float | None:
    """The predicted memory.total_gib in <run_dir>/plan.json, or None.

    The plugin's only read of plan.json: the run directory's layout belongs to `run`,
    so this is the one call to switch when that layout gets a single reader.
    """
    plan_file = run_dir / PLAN_JSON
    if not plan_file.is_file():
        return None
    try:
        return _find_total_gib(json.loads(plan_file.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _find_total_gib(obj: Any) -> float | None:
    """The predicted memory.total_gib in a plan.json value.

    `run` writes the plan's estimate at the top and one entry per attempt; after an OOM
    re-plan the last attempt's estimate is the one this training ran under, so it wins.
    """
    if isinstance(obj, list):
        for item in reversed(obj):
            found = _find_total_gib(item)
            if found:
                return found
        return None
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("attempts"), list):
        found = _find_total_gib(obj["attempts"])
        if found:
            return found
    mem = obj.get("memory")
    if isinstance(mem, dict):
        value = finite(mem.get("total_gib"))
        if value and value > 0:
            return value
    for key in ("final", "plan"):
        if isinstance(obj.get(key), dict):
            found = _find_total_gib(obj[key])
            if found:
                return found
    return None
