"""The value objects that flow between the modules (see docs/architecture.md).

All frozen dataclasses, no I/O, no torch. Each module produces one of these:

  hardware.resolve(spec)      -> Hardware
  model.inspect(name)         -> ModelSpec
  dataset.inspect(path, ...)  -> DataSpec
  memory.estimate(setup)      -> MemoryBreakdown     (setup: TrainSetup)
  planner.plan(hw, model, data, policy) -> Plan

One module per producer: base (units, literal types), hardware, model, data, setup
(TrainSetup, MemoryBreakdown), plan.
"""

from __future__ import annotations

from axo_helper.specs.base import (
    DISTRIBUTED,
    FULL_WEIGHT_METHODS,
    GIB,
    METHODS,
    Attention,
    DatasetType,
    Distributed,
    Method,
    Precision,
)
from axo_helper.specs.data import DataSpec, TokenStats
from axo_helper.specs.hardware import GPU, Hardware
from axo_helper.specs.model import LinearShape, ModelSpec, TokenizerFacts
from axo_helper.specs.plan import ChatChoice, ConfigSettings, Plan, Rejected, RowFate, Setting
from axo_helper.specs.setup import MemoryBreakdown, TrainSetup

__all__ = [
    "DISTRIBUTED",
    "FULL_WEIGHT_METHODS",
    "GIB",
    "GPU",
    "METHODS",
    "Attention",
    "ChatChoice",
    "ConfigSettings",
    "DataSpec",
    "DatasetType",
    "Distributed",
    "Hardware",
    "LinearShape",
    "MemoryBreakdown",
    "Method",
    "ModelSpec",
    "Plan",
    "Precision",
    "Rejected",
    "RowFate",
    "Setting",
    "TokenStats",
    "TokenizerFacts",
    "TrainSetup",
]
