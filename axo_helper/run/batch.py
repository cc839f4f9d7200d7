"""The micro batch `run --config --fit` picks for a config whose estimate does not fit.

The rule itself (which smaller micro batch keeps the batch and fits) is
axo_helper/fit.py's, the one plan, validate and the OOM retry use; this module only
applies it to the config's own estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from axo_helper.config.read import batch_of
from axo_helper.fit import fit_keeping_batch

if TYPE_CHECKING:
    from axo_helper.validate import MemoryCheck


def fit(cfg: Mapping[str, Any], check: MemoryCheck) -> tuple[tuple[int, int], float] | None:
    """The largest smaller micro batch (same effective batch) that the estimate fits.

    `check`: validation's estimate of `cfg` (its setup and budget), so the model is not
    inspected again. Returns ((micro batch, accumulation), predicted GiB), or None.
    """
    if check.setup is None:
        return None
    # The batch as Axolotl reads it: an unset or invalid micro_batch_size is 1.
    mb, ga = batch_of(cfg)
    found = fit_keeping_batch(replace(check.setup, micro_batch_size=mb), check.budget_gib, ga)
    if found is None:
        return None
    micro, accumulation, memory = found
    return (micro, accumulation), memory.total_gib
