"""metrics.jsonl and metrics.json: the per-step stream and the end-of-run summary.

`MetricsRecorder` is free of torch and the Trainer so it can be tested directly;
`callback.MetricsCallback` feeds it. The file names are the run directory's
(axo_helper/rundir.py; docs/plugin.md describes both formats).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from axo_helper.atomic import atomic_write_text
from axo_helper.plugin.device import peak_memory
from axo_helper.rundir import RunDir

METRICS_VERSION = 1


def finite(value: Any) -> float | None:
    """`value` as a float, or None when it is missing, not a number, inf or nan."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class MetricsRecorder:
    """Turns per-step observations into metrics.jsonl lines and the metrics.json summary.

    Free of torch and the Trainer so it can be tested directly; `MetricsCallback`
    feeds it. `now` and `memory` are injectable clocks for the same reason.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        world_size: int = 1,
        now: Callable[[], float] = time.time,
        memory: Callable[[], tuple[float, str]] = peak_memory,
        device: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.world_size = world_size
        self._now = now
        self._memory = memory
        self.device = device
        self.started_at: float | None = None
        self._last_mark: float | None = None
        self.steps: list[dict[str, Any]] = []  # every step record, in order
        self._pending: dict[str, Any] | None = None  # last step, waiting for its loss
        self.max_steps: int | None = None
        self.finished = False

    # --------------------------------------------------------------- stream
    def _append(self, record: dict[str, Any]) -> None:
        # Open, write one line, close: each line is complete on disk before the next
        # step, so `run` (tailing the file) never sees half a record.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with RunDir(self.run_dir).metrics_stream.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            fh.flush()

    def begin(self, *, max_steps: int | None, resumed_from_step: int = 0) -> None:
        self.started_at = self._last_mark = self._now()
        self.max_steps = max_steps if max_steps and max_steps > 0 else None
        # Appended, not truncated: a resumed run (OOM retry, --resume) continues the
        # same stream, and the "start" line tells the attempts apart.
        self._append(
            {
                "event": "start",
                "time": self.started_at,
                "max_steps": self.max_steps,
                "resumed_from_step": resumed_from_step,
                "world_size": self.world_size,
                "device": self.device,
            }
        )

    def step(self, *, step: int, epoch: float | None, tokens: int | None) -> None:
        """One optimizer step ended. Its loss usually follows in `log` (same step)."""
        self.flush_pending()
        t = self._now()
        dt = t - (self._last_mark if self._last_mark is not None else t)
        self._last_mark = t
        mem, _ = self._memory()
        # Rank 0 counts its own batches; the ranks' batches are alike, so the whole
        # job's rate is that times the world size (docs/plugin.md).
        total_tokens = tokens * self.world_size if tokens is not None else None
        self._pending = {
            "event": "step",
            "step": step,
            "max_steps": self.max_steps,
            "loss": None,
            "learning_rate": None,
            "grad_norm": None,
            "step_time_s": round(dt, 6),
            "tokens": total_tokens,
            "tokens_per_s": round(total_tokens / dt, 3) if total_tokens and dt > 0 else None,
            "peak_memory_gib": round(mem, 4),
            "epoch": round(epoch, 6) if epoch is not None else None,
            "time": t,
        }

    def log(self, *, step: int, logs: dict[str, Any]) -> None:
        """A Trainer log line: carries the loss and learning rate of `step`, or an
        evaluation's loss (an `eval` line: `axo-helper report` plots it by step)."""
        if "eval_loss" in logs:
            self._append({"event": "eval", "step": step, "eval_loss": finite(logs["eval_loss"])})
            return
        pending = self._pending
        if pending is None or pending["step"] != step or "loss" not in logs:
            return  # eval / summary logs, or a log for a step already written
        pending["loss"] = finite(logs.get("loss"))
        pending["learning_rate"] = finite(logs.get("learning_rate"))
        pending["grad_norm"] = finite(logs.get("grad_norm"))
        self.flush_pending()

    def flush_pending(self) -> None:
        if self._pending is not None:
            self.steps.append(self._pending)
            self._append(self._pending)
            self._pending = None

    # --------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        mem, kind = self._memory()
        times = [s["step_time_s"] for s in self.steps]
        # The first step pays for warm-up (CUDA context, kernel selection, caches), so
        # the mean rate leaves it out when there is more than one step.
        timed = self.steps[1:] if len(self.steps) > 1 else self.steps
        tok = sum(s["tokens"] or 0 for s in timed)
        secs = sum(s["step_time_s"] for s in timed)
        losses = [s["loss"] for s in self.steps if s["loss"] is not None]
        finished_at = self._now()
        return {
            "version": METRICS_VERSION,
            "device": self.device,
            "device_type": "cuda" if kind.startswith("cuda") else "cpu",
            "world_size": self.world_size,
            "steps": len(self.steps),
            "last_step": self.steps[-1]["step"] if self.steps else None,
            "max_steps": self.max_steps,
            "peak_memory_gib": round(mem, 4),
            "peak_memory_kind": kind,
            "tokens": sum(s["tokens"] or 0 for s in self.steps),
            "tokens_per_s": round(tok / secs, 3) if tok and secs > 0 else None,
            "step_time_s": {
                "mean": round(statistics.fmean(times), 6) if times else None,
                "median": round(statistics.median(times), 6) if times else None,
                "min": round(min(times), 6) if times else None,
                "max": round(max(times), 6) if times else None,
            },
            "step_times_s": times,
            "final_loss": losses[-1] if losses else None,
            "started_at": self.started_at,
            "finished_at": finished_at,
            "train_runtime_s": (
                round(finished_at - self.started_at, 3) if self.started_at is not None else None
            ),
        }

    def finish(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the end line and metrics.json; the second and later calls do nothing."""
        if self.finished:
            return {}
        self.finished = True
        self.flush_pending()
        summary = self.summary()
        summary.update(extra or {})
        self._append({"event": "end", "time": summary["finished_at"], "steps": summary["steps"]})
        summary_path = RunDir(self.run_dir).metrics_summary
        atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
        return summary
