"""The predicted peak GiB a run is measured against, and where it came from.

In order: the config's `axo_helper_predicted_gib`, the run directory's plan.json (read
through axo_helper/rundir.py, which knows where `run` writes the estimate), else
`memory.estimate` of the config as Axolotl ran it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo_helper import rundir
from axo_helper.plugin.recorder import finite


def predicted_gib(cfg: Any, run_dir: Path, setup: Any) -> tuple[float | None, str]:
    """(GiB, source) of the prediction; GiB is None when there is none to be had."""
    explicit = finite(cfg.axo_helper_predicted_gib)
    if explicit and explicit > 0:
        return explicit, "config"
    found = rundir.predicted_gib(rundir.RunDir(run_dir).read_plan_record())
    if found:
        return found, rundir.PLAN_JSON
    try:
        from axo_helper.memory import estimate
    except ImportError:
        return None, "no prediction (axo_helper.memory unavailable)"
    return float(estimate(setup).total_gib), "estimate"
