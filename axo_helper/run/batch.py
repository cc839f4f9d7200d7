"""Which micro batch next: after a CUDA OOM (`smaller_batch`) and for `--fit` (`fit`).

Both keep micro batch x accumulation, the samples per GPU per optimizer step. These
are the two seams to switch to axo_helper/fit.py (the shared fitting rule) later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from axo_helper.run.configedit import batch_of

if TYPE_CHECKING:
    from axo_helper.specs import Hardware, ModelSpec


def smaller_batch(micro_batch: int, accumulation: int) -> tuple[int, int] | None:
    """The next smaller micro batch that keeps micro x accumulation exactly; None at 1.

    Halves an even micro batch (doubling accumulation, as an operator would);
    otherwise takes the largest divisor of the per-GPU batch below the micro batch.
    """
    if micro_batch <= 1:
        return None
    per_gpu = micro_batch * max(1, accumulation)
    if micro_batch % 2 == 0:
        return micro_batch // 2, per_gpu // (micro_batch // 2)
    for candidate in range(micro_batch - 1, 0, -1):
        if per_gpu % candidate == 0:
            return candidate, per_gpu // candidate
    return None  # unreachable: 1 always divides


def fit(
    cfg: Mapping[str, Any], hardware: Hardware, model: ModelSpec | None
) -> tuple[tuple[int, int], float] | None:
    """The largest smaller micro batch (same effective batch) that the estimate fits.

    `model`: the inspected base model, so candidates do not inspect it again.
    """
    from axo_helper.validate import memory_check

    mb, ga = batch_of(cfg)
    while True:
        nxt = smaller_batch(mb, ga)
        if nxt is None:
            return None
        mb, ga = nxt
        check = memory_check(
            {**cfg, "micro_batch_size": mb, "gradient_accumulation_steps": ga},
            hardware,
            model=model,
        )
        if check.fits:
            return (mb, ga), check.breakdown.total_gib
