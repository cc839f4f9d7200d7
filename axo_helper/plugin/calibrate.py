"""The calibration row a finished GPU run adds to the store (`record_calibration`).

Everything it needs (the config reader, the model facts, the store) is imported
inside the function: a failure there is written into metrics.json, never raised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from axo_helper.plugin.prediction import predicted_gib

LOG = logging.getLogger("axo_helper.plugin")


def record_calibration(cfg: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Add this run to the calibration store when it can; say in metrics.json why not.

    Never raises: a finished training must not fail over its bookkeeping.
    """
    if summary.get("device_type") != "cuda":
        return {"calibration": {"recorded": False, "reason": "CPU run: only GPU runs calibrate"}}
    if cfg.axo_helper_calibrate is False:
        return {"calibration": {"recorded": False, "reason": "axo_helper_calibrate: false"}}
    try:
        from axo_helper.calibration import CalibrationStore, Measurement
        from axo_helper.config.read import setup_from_config
        from axo_helper.model import inspect

        run_dir = Path(str(cfg.axo_helper_run_dir))
        setup = setup_from_config(
            dict(cfg), inspect(str(cfg.base_model)), num_gpus=summary["world_size"]
        )
        predicted, source = predicted_gib(cfg, run_dir, setup)
        if not predicted:
            return {"calibration": {"recorded": False, "reason": source}}
        gpu = str(cfg.axo_helper_gpu or summary["device"])
        store = CalibrationStore()
        store.add(
            Measurement.from_setup(
                setup,
                gpu=gpu,
                predicted_gib=predicted,
                measured_gib=summary["peak_memory_gib"],
                tokens_per_s=summary.get("tokens_per_s"),
            )
        )
        return {
            "predicted_gib": round(predicted, 4),
            "calibration": {
                "recorded": True,
                "gpu": gpu,
                "predicted_from": source,
                "store": str(store.path),
            },
        }
    except Exception as exc:  # the bookkeeping of a finished run must never fail it
        LOG.warning("axo-helper: calibration not recorded: %s", exc)
        return {"calibration": {"recorded": False, "reason": f"error: {exc}"}}
