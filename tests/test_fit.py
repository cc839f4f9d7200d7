"""fit.py: the one "which micro batch fits" rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from axo_helper import fit, model
from axo_helper.specs import MemoryBreakdown, TrainSetup

SETUP = TrainSetup(model=model.inspect("Qwen/Qwen2.5-0.5B"), micro_batch_size=8)


def per_sample(gib: float, base: float = 2.0) -> fit.Estimator:
    """A toy estimate: `base` + `gib` per micro-batch sample."""

    def estimate(s: TrainSetup) -> MemoryBreakdown:
        total = base + gib * s.micro_batch_size
        return MemoryBreakdown(base, 0.0, total - base, 0.0, 0.0, total, 1)

    return estimate


def at(mb: int) -> TrainSetup:
    return replace(SETUP, micro_batch_size=mb)


def test_largest_fit_stops_at_the_first_miss_and_reports_it() -> None:
    found = fit.largest_fit(at, 10.0, (1, 2, 4, 8, 16), per_sample(1.0))
    assert found.micro_batch == 8 and found.memory is not None
    assert found.memory.total_gib == 10.0
    assert found.next_up is not None and found.next_up.total_gib == 18.0


def test_nothing_fits_gives_zero_and_the_first_estimate() -> None:
    found = fit.largest_fit(at, 2.5, (1, 2), per_sample(1.0))
    assert (found.micro_batch, found.memory) == (0, None)
    assert found.next_up is not None and found.next_up.total_gib == 3.0


def test_all_fit_leaves_next_up_empty() -> None:
    found = fit.largest_fit(at, 100.0, (1, 2, 4), per_sample(1.0))
    assert (found.micro_batch, found.next_up) == (4, None)


def test_the_default_estimator_is_the_memory_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from axo_helper import memory

    monkeypatch.setattr(memory, "estimate", per_sample(1.0))
    assert fit.largest_fit(at, 5.0, (1, 2, 3, 4)).micro_batch == 3


@pytest.mark.parametrize(
    ("mb", "ga", "expected"),
    [
        (16, 1, (8, 2)),
        (4, 4, (2, 8)),
        (2, 8, (1, 16)),
        (6, 1, (3, 2)),
        (3, 5, (1, 15)),  # no divisor of 15 between 1 and 3: straight to 1
        (3, 4, (2, 6)),
        (1, 16, None),
    ],
)
def test_smaller_batch_keeps_the_effective_batch(
    mb: int, ga: int, expected: tuple[int, int] | None
) -> None:
    got = fit.smaller_batch(mb, ga)
    assert got == expected
    if got is not None:
        assert got[0] * got[1] == mb * ga and got[0] < mb


def test_smaller_batches_keep_the_batch() -> None:
    assert fit.smaller_batch(1, 4) is None
    assert fit.smaller_batch(8, 2) == (4, 4)
    assert fit.smaller_batch(6, 1) == (3, 2)
    assert fit.smaller_batch(9, 1) == (3, 3)
    assert fit.smaller_batches(8, 1) == [(4, 2), (2, 4), (1, 8)]
    assert all(m * g == 8 for m, g in fit.smaller_batches(8, 1))


def test_fit_keeping_batch() -> None:
    found = fit.fit_keeping_batch(SETUP, 7.0, 2, per_sample(1.0))
    assert found is not None
    mb, ga, bd = found
    assert (mb, ga, bd.total_gib) == (4, 4, 6.0)
    assert fit.fit_keeping_batch(SETUP, 2.5, 2, per_sample(1.0)) is None
    assert fit.fit_keeping_batch(at(1), 100.0, 2, per_sample(1.0)) is None
