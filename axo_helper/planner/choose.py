"""Choosing within a method: the fastest (variant, micro batch) that fits.

Each variant's largest micro batch up to the cap is found first (memory is monotone
in it, so every smaller one fits too); then every fitting micro batch of every variant
is timed and the lowest predicted time per epoch wins.
"""

from __future__ import annotations

from dataclasses import replace

from axo_helper.planner.search import Choice, Search, Timed, VariantFit
from axo_helper.specs import Method


def choose_for_method(
    search: Search, method: Method, seq: int, packing: bool, micro_batch: int | None
) -> Choice | None:
    """The fastest (variant, micro batch) of a method that fits; ties go to the simpler.

    Each variant's largest micro batch up to the cap is found first (memory is monotone
    in it, so every smaller one fits too); then every fitting micro batch of every
    variant is timed and the lowest predicted time per epoch wins. Times within the
    policy's tie fraction are equal, and the earlier variant (the ladder's order: no
    sharding, default optimizer, no checkpointing first) and the larger micro batch win.
    Without a time model (CPU, a GPU without a throughput figure) the largest micro
    batch on the earliest variant wins, as before.
    """
    variants = search.variants()
    if micro_batch is not None:
        cap, cap_why = micro_batch, "set by --micro-batch"
        fits = [search.fit(method, seq, packing, v, cap, exact=micro_batch) for v in variants]
    else:
        cap, cap_why = search.micro_cap(seq)
        fits = [search.fit(method, seq, packing, v, cap) for v in variants]
    ranked = _rank(search, method, seq, packing, fits, exact=micro_batch)
    if not ranked:
        return None
    best = ranked[0]
    return Choice(
        method, seq, packing, best.micro_batch, best.fit, tuple(fits), cap, cap_why, ranked
    )


def _rank(
    search: Search,
    method: Method,
    seq: int,
    packing: bool,
    fits: list[VariantFit],
    *,
    exact: int | None = None,
) -> tuple[Timed, ...]:
    """The fastest candidate of each fitting variant, fastest (then simplest) first."""
    per_variant: list[tuple[float, int, Timed]] = []
    for order, f in enumerate(fits):
        if f.micro_batch == 0:
            continue
        sizes = (
            [exact]
            if exact is not None
            else [c for c in search.policy.micro_batch_candidates if c <= f.micro_batch]
        )
        best: Timed | None = None
        for mb in sorted(sizes, reverse=True):  # larger first: it wins a tie
            setup = search.setup(method, seq, packing, f.variant, mb)
            t = Timed(replace(f, memory=search.estimate(setup)), mb, search.seconds(setup))
            if best is None or _faster(t, best, search.policy.speed.tie_fraction):
                best = t
        assert best is not None
        per_variant.append((best.seconds if best.seconds is not None else 0.0, order, best))
    if not per_variant:
        return ()
    timed = all(t.seconds is not None for _, _, t in per_variant)
    if not timed:
        # No time model: the largest micro batch, then the earliest variant.
        per_variant.sort(key=lambda x: (-x[2].micro_batch, x[1]))
        return tuple(t for _, _, t in per_variant)
    tie = search.policy.speed.tie_fraction
    fastest = min(s for s, _, _ in per_variant)
    # within the tie band of the fastest, the earliest (simplest) variant comes first
    band = fastest * (1 + tie)

    def key(x: tuple[float, int, Timed]) -> tuple[int, float]:
        return (0, x[1]) if x[0] <= band else (1, x[0])

    per_variant.sort(key=key)
    return tuple(t for _, _, t in per_variant)


def _faster(a: Timed, b: Timed, tie: float) -> bool:
    """a beats b (b came first, so it wins a tie)."""
    if a.seconds is None or b.seconds is None:
        return False
    return a.seconds < b.seconds * (1 - tie)


def lightest(search: Search, method: Method, seq: int, packing: bool) -> VariantFit:
    """The least a method needs at this length: the last rung at micro batch 1."""
    v = search.lightest_variant()
    return search.fit(method, seq, packing, v, 1, exact=1)
