"""Which micro batch fits: the one rule the planner, validate, `run --fit` and the OOM retry use.

A micro batch fits when its estimated peak is within the budget. Memory grows with the
micro batch, so the answer is the longest ascending prefix of the candidates that fits:
the walk stops at the first candidate over budget and reports its estimate (the "next
size needs ..." that explanations quote).

An existing config's batch is kept when the micro batch changes (run --fit, OOM retry):
smaller_batch keeps micro x accumulation exact. A new plan's accumulation is the
planner's (planner/packing.py: the policy's tokens per optimizer step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from axo_helper.specs import MemoryBreakdown, TrainSetup

Estimator = Callable[[TrainSetup], MemoryBreakdown]
SetupFor = Callable[[int], TrainSetup]  # micro batch -> the setup to estimate


@dataclass(frozen=True)
class Fit:
    """The largest candidate that fits (0: not even the first one)."""

    micro_batch: int
    memory: MemoryBreakdown | None  # at micro_batch; None when 0
    next_up: MemoryBreakdown | None  # at the first candidate over budget; None when none was


def _memory_estimate(setup: TrainSetup) -> MemoryBreakdown:
    # Looked up at call time so a patched memory.estimate (tests) is the one used.
    from axo_helper import memory

    return memory.estimate(setup)


def largest_fit(
    setup_for: SetupFor,
    budget_gib: float,
    candidates: Iterable[int],
    estimate: Estimator | None = None,
) -> Fit:
    """Walk `candidates` (ascending) while each fits in `budget_gib`."""
    est = estimate or _memory_estimate
    best, best_bd = 0, None
    for mb in candidates:
        bd = est(setup_for(mb))
        if bd.total_gib > budget_gib:
            return Fit(best, best_bd, bd)
        best, best_bd = mb, bd
    return Fit(best, best_bd, None)


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


def smaller_batches(micro_batch: int, accumulation: int) -> list[tuple[int, int]]:
    """Every smaller_batch step from (micro_batch, accumulation) down to micro batch 1."""
    out: list[tuple[int, int]] = []
    step = smaller_batch(micro_batch, accumulation)
    while step is not None:
        out.append(step)
        step = smaller_batch(*step)
    return out


def fit_keeping_batch(
    setup: TrainSetup,
    budget_gib: float,
    accumulation: int,
    estimate: Estimator | None = None,
) -> tuple[int, int, MemoryBreakdown] | None:
    """The largest smaller (micro batch, accumulation) of `setup` that fits, same batch.

    `accumulation` is the config's (a TrainSetup may leave it undecided). None when
    even micro batch 1 does not fit, or the setup is already at 1.
    """
    steps = dict(smaller_batches(setup.micro_batch_size, accumulation))
    found = largest_fit(
        lambda mb: replace(setup, micro_batch_size=mb, gradient_accumulation_steps=steps[mb]),
        budget_gib,
        sorted(steps),
        estimate,
    )
    if found.micro_batch == 0 or found.memory is None:
        return None
    return found.micro_batch, steps[found.micro_batch], found.memory
