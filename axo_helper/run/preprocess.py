"""`axolotl preprocess` before training: dataset problems surface here, before any GPU time."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from axo_helper import launch as launch_mod
from axo_helper.errors import AxoHelperError, DatasetError, Interrupted
from axo_helper.launch import LaunchSpec
from axo_helper.run.context import RunContext
from axo_helper.run.logscan import error_summary
from axo_helper.shell import command


def preprocess(run: RunContext, spec: LaunchSpec, cfg: Mapping[str, Any]) -> None:
    """Run it; a failure raises DatasetError naming Axolotl's error and, if found, the row."""
    tail: deque[str] = deque(maxlen=400)
    started = time.monotonic()
    rc = run.run_child(spec, "preprocess", tail)
    run.record["preprocess_seconds"] = round(time.monotonic() - started, 1)
    if launch_mod.interrupted():
        run.save_record(status="interrupted")
        raise Interrupted(
            "interrupted while preprocessing (no training had started)",
            hint="start it again with: "
            + command("axo-helper", "run", "--resume", run.run_dir)
            + " (the config is kept; training starts from the beginning)",
        )
    if rc == 0:
        return
    summary = error_summary(list(tail)) or f"exit code {rc}"
    detail = _dataset_detail(cfg)
    run.save_record(status="failed", error=f"preprocess: {summary}")
    message = f"Axolotl could not prepare the dataset: {summary}"
    if detail:
        message += f"\n  {detail}"
    raise DatasetError(
        message,
        hint=f"fix the dataset or the datasets: block of {run.dir.config}; "
        f"the full output is in {run.dir.train_log}",
    )


def _dataset_detail(cfg: Mapping[str, Any]) -> str | None:
    """Our own scan of each local dataset, which names the offending row when it finds one."""
    from axo_helper import dataset as dataset_mod

    for entry in cfg.get("datasets") or []:
        if not isinstance(entry, Mapping):
            continue
        path = entry.get("path")
        if isinstance(path, str) and Path(path).exists():
            try:
                dataset_mod.inspect(path, max_token_rows=1)
            except AxoHelperError as exc:
                return str(exc.message)
    return None
