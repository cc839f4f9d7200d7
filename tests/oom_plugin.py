"""A test-only Axolotl plugin that fakes a CUDA OOM: `plugins: [oom_plugin.OomAtStepPlugin]`.

Tests of `axo-helper run`'s OOM retry need a real torch.OutOfMemoryError inside
Axolotl's trainer on a CPU machine, with nothing in the launcher mocked. The fault
lives here, not in axo_helper's shipped plugin, so no production run can trip it.

The Axolotl child imports this module by its dotted name, so `tests/` must be on its
PYTHONPATH: `oom_env(at_step=2, above_micro_batch=2)` returns the variables to add to
the child's environment (pytest itself finds it through pythonpath = ["tests"]).

    AXO_HELPER_FAULT_OOM_AT_STEP=k               raise at the end of optimizer step k
    AXO_HELPER_FAULT_OOM_IF_MICRO_BATCH_ABOVE=n  only while micro_batch_size > n: "this
                                                 GPU fits micro batch n", so a re-plan
                                                 with a smaller micro batch succeeds
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

LOG = logging.getLogger("oom_plugin")

PLUGIN = "oom_plugin.OomAtStepPlugin"
FAULT_OOM_AT_STEP = "AXO_HELPER_FAULT_OOM_AT_STEP"
FAULT_OOM_ABOVE_MICRO_BATCH = "AXO_HELPER_FAULT_OOM_IF_MICRO_BATCH_ABOVE"
TESTS_DIR = Path(__file__).resolve().parent


def oom_env(at_step: int, above_micro_batch: int | None = None) -> dict[str, str]:
    """The environment a child needs to load this plugin and fault at `at_step`."""
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, FAULT_OOM_AT_STEP: str(at_step)}
    if above_micro_batch is not None:
        env[FAULT_OOM_ABOVE_MICRO_BATCH] = str(above_micro_batch)
    return env


class FaultInjectionCallback(TrainerCallback):
    """Raises a CUDA OOM at the end of optimizer step `at_step` and every step after."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.at_step:
            import torch

            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB (injected at step "
                f"{state.global_step} by {FAULT_OOM_AT_STEP})"
            )


def fault_callback(cfg: Any) -> FaultInjectionCallback | None:
    """The callback the environment asks for with this config, or None."""
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


class OomAtStepPlugin(BasePlugin):
    """Adds the fault callback when the environment asks for one; otherwise inert."""

    def add_callbacks_post_trainer(self, cfg: Any, trainer: Any) -> list[Any]:
        fault = fault_callback(cfg)
        return [fault] if fault is not None else []
