"""What the run measured while it trained: loss, learning rate, speed, per step.

Read from the plugin's metrics.jsonl (docs/plugin.md) and metrics.json. The
evaluation loss Axolotl computed during training comes from the stream's `eval`
lines when the plugin writes them, else from the Trainer's log history in the
newest checkpoint (`trainer_state.json`). Pure reading: no torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from axo_helper.progress import MetricsReader
from axo_helper.rundir import RunDir, latest_checkpoint

Series = list[list[float]]  # [[step, value], ...] in step order


@dataclass(frozen=True)
class TrainingFigures:
    """The per-step records (the last one written for each step wins) and the summary."""

    steps: list[dict[str, Any]]
    summary: dict[str, Any] | None
    eval_loss: Series
    eval_source: str | None
    attempts: int
    missing: list[str] = field(default_factory=list)

    def series(self, key: str) -> Series:
        """[[step, value]] of every step where `key` is a finite number."""
        out: Series = []
        for record in self.steps:
            value = _number(record.get(key))
            if value is not None:
                out.append([record["step"], value])
        return out

    def to_json(self) -> dict[str, Any]:
        summary = self.summary or {}
        train = self.series("loss")
        return {
            "steps": len(self.steps),
            "attempts": self.attempts,
            "final_train_loss": train[-1][1] if train else None,
            "final_eval_loss": self.eval_loss[-1][1] if self.eval_loss else None,
            "eval_loss_source": self.eval_source,
            "tokens_per_s": _number(summary.get("tokens_per_s"))
            or _mean(self.series("tokens_per_s")),
            "step_time_s": summary.get("step_time_s") or _spread(self.series("step_time_s")),
            "train_runtime_s": _number(summary.get("train_runtime_s")),
            "series": {
                "train_loss": train,
                "eval_loss": self.eval_loss,
                "learning_rate": self.series("learning_rate"),
                "tokens_per_s": self.series("tokens_per_s"),
                "step_time_s": self.series("step_time_s"),
                "peak_memory_gib": self.series("peak_memory_gib"),
            },
            "missing": list(self.missing),
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _mean(series: Series) -> float | None:
    # The first step pays for warm-up; metrics.json leaves it out the same way.
    values = [v for _, v in series[1:]] or [v for _, v in series]
    return round(sum(values) / len(values), 3) if values else None


def _spread(series: Series) -> dict[str, float] | None:
    values = sorted(v for _, v in series)
    if not values:
        return None
    return {
        "mean": round(sum(values) / len(values), 6),
        "median": values[len(values) // 2],
        "min": values[0],
        "max": values[-1],
    }


def read_training(run: RunDir) -> TrainingFigures:
    """The run's training figures; what is missing is said in `missing`, never raised."""
    missing: list[str] = []
    records = MetricsReader(run.metrics_stream).read() if run.metrics_stream.is_file() else []
    by_step: dict[int, dict[str, Any]] = {}
    evals: dict[int, float] = {}
    attempts = 0
    for record in records:
        event = record.get("event")
        step = record.get("step")
        if event == "start":
            attempts += 1
        elif event == "step" and isinstance(step, int):
            by_step[step] = record  # a retry or --resume rewrites a step: the last one ran
        elif event == "eval" and isinstance(step, int):
            value = _number(record.get("eval_loss"))
            if value is not None:
                evals[step] = value
    if not run.metrics_stream.is_file():
        missing.append(
            f"no {run.metrics_stream.name}: the run did not use axo-helper's plugin "
            "(or never reached its first step), so there is no loss, speed or memory per step"
        )
    elif not by_step:
        missing.append(f"{run.metrics_stream.name} holds no training step")
    summary = _read_summary(run)
    if summary is None and by_step:  # without steps, that is already said above
        missing.append(
            f"no {run.metrics_summary.name}: training did not finish "
            "(the figures come from the steps it recorded)"
        )
    eval_source = run.metrics_stream.name if evals else None
    if not evals:
        evals, eval_source = _checkpoint_evals(run)
    if not evals:
        missing.append(
            "no evaluation loss during training: the config holds out no split "
            "(val_set_size 0, no test_datasets) or no evaluation ran"
        )
    return TrainingFigures(
        steps=[by_step[s] for s in sorted(by_step)],
        summary=summary,
        eval_loss=[[s, evals[s]] for s in sorted(evals)],
        eval_source=eval_source,
        attempts=attempts,
        missing=missing,
    )


def _read_summary(run: RunDir) -> dict[str, Any] | None:
    try:
        summary = json.loads(run.metrics_summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _checkpoint_evals(run: RunDir) -> tuple[dict[int, float], str | None]:
    """eval_loss by step from the newest checkpoint's trainer_state.json log history."""
    checkpoint = latest_checkpoint(run.output)
    if checkpoint is None:
        return {}, None
    state_file = checkpoint / "trainer_state.json"
    try:
        history = json.loads(state_file.read_text(encoding="utf-8")).get("log_history") or []
    except (OSError, ValueError, AttributeError):
        return {}, None
    evals: dict[int, float] = {}
    for entry in history:
        if not isinstance(entry, dict):
            continue
        step, value = entry.get("step"), _number(entry.get("eval_loss"))
        if isinstance(step, int) and value is not None:
            evals[step] = value
    return evals, (f"{run.output.name}/{checkpoint.name}/trainer_state.json" if evals else None)
