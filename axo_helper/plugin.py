"""The Axolotl plugin that measures a run: `plugins: [axo_helper.plugin.AxoHelperPlugin]`.

Axolotl imports this module inside the training process (never on the plan path:
it imports axolotl and transformers at the top). With `axo_helper_run_dir` set it

- streams one JSON line per optimizer step to <run_dir>/metrics.jsonl (step, loss,
  learning rate, step time, tokens/s, peak memory), which `axo-helper run` tails for
  its progress display;
- writes <run_dir>/metrics.json once at the end (peak memory, mean tokens/s, step
  times, final loss, device) atomically;
- records a calibration Measurement (GPU runs only: CPU peak RSS says nothing about
  GPU memory and would pollute the store).

Without its own keys it does nothing: Axolotl 0.21 registers every plugin found
through the `axolotl.plugins` entry point, whether or not the config lists it.
See docs/plugin.md for the file formats.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from pydantic import BaseModel
from transformers import TrainerCallback

from axo_helper.atomic import atomic_write_text
from axo_helper.specs import GIB

LOG = logging.getLogger("axo_helper.plugin")

METRICS_STREAM = "metrics.jsonl"
METRICS_SUMMARY = "metrics.json"
METRICS_VERSION = 1

# Fault injection for the OOM-retry test of `axo-helper run`: when set, the
# plugin raises torch.OutOfMemoryError at the end of optimizer step k. The optional
# micro-batch bound makes the fault "the GPU only fits micro_batch_size <= n", so a
# re-plan with a smaller micro batch succeeds. Only active while the plugin is.
FAULT_OOM_AT_STEP = "AXO_HELPER_FAULT_OOM_AT_STEP"
FAULT_OOM_ABOVE_MICRO_BATCH = "AXO_HELPER_FAULT_OOM_IF_MICRO_BATCH_ABOVE"


class AxoHelperArgs(BaseModel):
    """The plugin's config keys; Axolotl merges them into its config schema."""

    # Where metrics.jsonl / metrics.json go. Unset: the plugin does nothing.
    axo_helper_run_dir: str | None = None
    # The planner's predicted peak memory per GPU (GiB); the calibration store needs
    # it. Unset: taken from <run_dir>/plan.json, else estimated from this config.
    axo_helper_predicted_gib: float | None = None
    # The GPU name stored with the measurement (default: torch.cuda.get_device_name()).
    axo_helper_gpu: str | None = None
    # false: measure, but do not add the run to the calibration store.
    axo_helper_calibrate: bool | None = None


def _rank_zero() -> bool:
    """True on the global rank 0 (or when not distributed): only it writes files."""
    return os.environ.get("RANK", "0") in ("", "0")


def _world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def peak_memory() -> tuple[float, str]:
    """(GiB, what was measured): the caching allocator's high-water mark on CUDA
    (what an OOM is about), the process's peak resident set on CPU."""
    if _cuda():
        import torch

        return torch.cuda.max_memory_reserved() / GIB, "cuda_max_memory_reserved"
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return rss * scale / GIB, "process_max_rss"


def device_name() -> str:
    if _cuda():
        import torch

        return str(torch.cuda.get_device_name(torch.cuda.current_device()))
    return f"cpu ({platform.machine() or 'unknown'})"


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class MetricsRecorder:
    """Turns per-step observations into metrics.jsonl lines and the metrics.json summary.

    Free of torch and the Trainer so it can be tested directly; the callback below
    feeds it. `now` and `memory` are injectable clocks for the same reason.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        world_size: int = 1,
        now: Any = time.time,
        memory: Any = peak_memory,
        device: str | None = None,
    ):
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
        with (self.run_dir / METRICS_STREAM).open("a", encoding="utf-8") as fh:
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
        """A Trainer log line: carries the loss and learning rate of `step`."""
        pending = self._pending
        if pending is None or pending["step"] != step or "loss" not in logs:
            return  # eval / summary logs, or a log for a step already written
        pending["loss"] = _finite(logs.get("loss"))
        pending["learning_rate"] = _finite(logs.get("learning_rate"))
        pending["grad_norm"] = _finite(logs.get("grad_norm"))
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
        atomic_write_text(self.run_dir / METRICS_SUMMARY, json.dumps(summary, indent=2) + "\n")
        return summary


class TokenCounter:
    """Counts the non-padding input tokens the model is trained on.

    A forward pre-hook on the model sees every micro-batch's inputs; the Trainer's own
    counter (include_num_input_tokens_seen) sums attention_mask, which with Axolotl's
    sample packing holds sequence ids (1, 2, 3 ...) rather than 0/1, and overcounts.
    The count stays a device tensor until read, so counting adds no GPU sync.
    """

    def __init__(self, pad_token_id: int | None):
        self.pad_token_id = pad_token_id
        self._total: Any = None
        self._read = 0
        self._handle: Any = None

    def attach(self, model: Any) -> None:
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not module.training:
            return  # evaluation forwards are not training throughput
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        if mask is not None and hasattr(mask, "count_nonzero"):
            n = mask.count_nonzero()
        elif ids is not None and hasattr(ids, "numel"):
            n = (ids != self.pad_token_id).sum() if self.pad_token_id is not None else ids.numel()
        else:
            return
        self._total = n if self._total is None else self._total + n

    def take(self) -> int | None:
        """Tokens since the last call (None before any training forward)."""
        if self._total is None:
            return None
        total = int(self._total)  # the one sync point, once per optimizer step
        new, self._read = total - self._read, total
        return new


class MetricsCallback(TrainerCallback):
    """Feeds the Trainer's events to a MetricsRecorder (rank 0 only)."""

    def __init__(self, cfg: Any, trainer: Any):
        self.cfg = cfg
        self.active = _rank_zero()
        self.recorder = MetricsRecorder(
            Path(str(cfg.axo_helper_run_dir)), world_size=_world_size(), device=device_name()
        )
        tok = getattr(trainer, "processing_class", None) or getattr(trainer, "tokenizer", None)
        self.counter = TokenCounter(getattr(tok, "pad_token_id", None))
        if self.active:
            self.counter.attach(trainer.model)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.active:
            return
        if _cuda():
            import torch

            # Peak of this run, not of model loading in an earlier phase of the process.
            torch.cuda.reset_peak_memory_stats()
        self.recorder.begin(max_steps=state.max_steps, resumed_from_step=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.active:
            self.recorder.step(
                step=state.global_step, epoch=state.epoch, tokens=self.counter.take()
            )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self.active and logs:
            self.recorder.log(step=state.global_step, logs=logs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.finish()

    def finish(self) -> None:
        """End-of-run work, once: metrics.json and the calibration row."""
        if not self.active or self.recorder.finished:
            return
        self.counter.detach()
        summary = self.recorder.summary()
        extra = record_calibration(self.cfg, summary)
        self.recorder.finish(extra)


class FaultInjectionCallback(TrainerCallback):
    """Raises a CUDA OOM at step k (see FAULT_OOM_AT_STEP): a test seam for `run`."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.at_step:
            import torch

            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at step "
                f"{state.global_step} by {FAULT_OOM_AT_STEP})"
            )


def fault_callback(cfg: Any) -> FaultInjectionCallback | None:
    raw = os.environ.get(FAULT_OOM_AT_STEP)
    if not raw:
        return None
    try:
        at_step = int(raw)
    except ValueError:
        LOG.warning("ignoring %s=%r: not an integer", FAULT_OOM_AT_STEP, raw)
        return None
    bound = os.environ.get(FAULT_OOM_ABOVE_MICRO_BATCH)
    if bound:
        try:
            if int(cfg.micro_batch_size or 1) <= int(bound):
                return None  # this micro batch "fits": no fault
        except ValueError:
            LOG.warning("ignoring %s=%r: not an integer", FAULT_OOM_ABOVE_MICRO_BATCH, bound)
    return FaultInjectionCallback(at_step)


# ------------------------------------------------------------------ calibration
def _predicted_gib(cfg: Any, run_dir: Path, setup: Any) -> tuple[float | None, str]:
    """The prediction this run is measured against, and where it came from."""
    explicit = _finite(cfg.axo_helper_predicted_gib)
    if explicit and explicit > 0:
        return explicit, "config"
    plan_file = run_dir / "plan.json"
    if plan_file.is_file():
        try:
            found = _find_total_gib(json.loads(plan_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            found = None
        if found:
            return found, "plan.json"
    try:
        from axo_helper.memory import estimate
    except ImportError:
        return None, "no prediction (axo_helper.memory unavailable)"
    return float(estimate(setup).total_gib), "estimate"


def _find_total_gib(obj: Any) -> float | None:
    """The predicted memory.total_gib in plan.json.

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
        value = _finite(mem.get("total_gib"))
        if value and value > 0:
            return value
    for key in ("final", "plan"):
        if isinstance(obj.get(key), dict):
            found = _find_total_gib(obj[key])
            if found:
                return found
    return None


def record_calibration(cfg: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Add this run to the calibration store when it can; say in metrics.json why not.

    Never raises: a finished training must not fail over its bookkeeping.
    """
    if summary.get("device_type") != "cuda":
        return {"calibration": {"recorded": False, "reason": "CPU run: only GPU runs calibrate"}}
    if cfg.axo_helper_calibrate is False:
        return {"calibration": {"recorded": False, "reason": "axo_helper_calibrate: false"}}
    try:
        from axo_helper.axolotl_config import setup_from_config
        from axo_helper.calibration import CalibrationStore, Measurement
        from axo_helper.model import inspect

        run_dir = Path(str(cfg.axo_helper_run_dir))
        setup = setup_from_config(
            dict(cfg), inspect(str(cfg.base_model)), num_gpus=summary["world_size"]
        )
        predicted, source = _predicted_gib(cfg, run_dir, setup)
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


# ------------------------------------------------------------------ the plugin
class AxoHelperPlugin(BasePlugin):
    """Measures a training run for axo-helper; inert unless `axo_helper_run_dir` is set."""

    def __init__(self) -> None:
        super().__init__()
        self._callback: MetricsCallback | None = None

    def get_input_args(self) -> str:
        return "axo_helper.plugin.AxoHelperArgs"

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        if not cfg.axo_helper_run_dir:
            return []
        self._callback = MetricsCallback(cfg, trainer)
        callbacks: list[Any] = [self._callback]
        fault = fault_callback(cfg)
        if fault is not None:
            callbacks.append(fault)
        return callbacks

    def post_train(self, cfg: Any, model: Any) -> None:
        # Axolotl 0.19 calls post_train twice (after trainer.train and again after
        # saving); on_train_end normally did the work already, and finish() runs once.
        if self._callback is not None:
            self._callback.finish()
