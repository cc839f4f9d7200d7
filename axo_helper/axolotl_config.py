"""Moved: reading an Axolotl config lives in axo_helper.config.read.

Kept so existing imports (export.py, plugin.py) work until they import from
axo_helper.config.read directly.
"""

from __future__ import annotations

from axo_helper.config.read import (
    DEFAULT_LORA_R,
    DEFAULT_LORA_TARGETS,
    DEFAULT_MICRO_BATCH,
    DEFAULT_OPTIMIZER,
    DEFAULT_SEQUENCE_LEN,
    attention_of,
    distributed_of,
    method_of,
    precision_of,
    setup_from_config,
)

__all__ = [
    "DEFAULT_LORA_R",
    "DEFAULT_LORA_TARGETS",
    "DEFAULT_MICRO_BATCH",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_SEQUENCE_LEN",
    "attention_of",
    "distributed_of",
    "method_of",
    "precision_of",
    "setup_from_config",
]
