"""The Trainer callback that feeds a run's events to the recorder (rank 0 only).

Imports transformers at the top: it is loaded only inside the training process,
through the plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from axo_helper.plugin.calibrate import record_calibration
from axo_helper.plugin.device import cuda, device_name, rank_zero, world_size
from axo_helper.plugin.recorder import MetricsRecorder
from axo_helper.plugin.tokens import TokenCounter


class MetricsCallback(TrainerCallback):
    """Feeds the Trainer's events to a MetricsRecorder (rank 0 only)."""

    def __init__(self, cfg: Any, trainer: Any) -> None:
        self.cfg = cfg
        self.active = rank_zero()
        self.recorder = MetricsRecorder(
            Path(str(cfg.axo_helper_run_dir)), world_size=world_size(), device=device_name()
        )
        tok = getattr(trainer, "processing_class", None) or getattr(trainer, "tokenizer", None)
        self.counter = TokenCounter(getattr(tok, "pad_token_id", None))
        if self.active:
            self.counter.attach(trainer.model)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.active:
            return
        if cuda():
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
