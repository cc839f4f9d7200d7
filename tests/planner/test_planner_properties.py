"""Properties of planner.plan over many GPUs and models (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_helpers import POLICY, qa_data, sized

from axo_helper import model, planner
from axo_helper.errors import PlanError
from axo_helper.specs import (
    GIB,
)

# =========================================================================== properties
MODELS = [
    "Qwen/Qwen2.5-0.5B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.1-8B",
    "mistralai/Mistral-7B-v0.3",
    "Qwen/Qwen2.5-14B",
]
SPECS = {name: model.inspect(name) for name in MODELS}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mem=st.floats(min_value=4.0, max_value=200.0),
    name=st.sampled_from(MODELS),
    method=st.sampled_from(["full", "lora", "qlora", None]),
    seq=st.sampled_from([256, 512, 1024, 2048, 4096, None]),
    n=st.sampled_from([1, 2, 8]),
)
def test_a_returned_plan_never_exceeds_its_budget(
    mem: float, name: str, method: str | None, seq: int | None, n: int
) -> None:
    try:
        p = planner.plan(sized(mem, n), SPECS[name], None, POLICY, method=method, seq_len=seq)  # type: ignore[arg-type]
    except PlanError:
        return
    assert p.memory.total_gib <= p.budget_gib
    assert p.budget_gib <= mem
    assert p.memory.total_gib == pytest.approx(planner.memory.estimate(p.setup).total_gib)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mem=st.floats(min_value=4.0, max_value=120.0),
    extra=st.floats(min_value=0.0, max_value=80.0),
    name=st.sampled_from(MODELS),
    method=st.sampled_from(["full", "lora", "qlora"]),
    seq=st.sampled_from([256, 512, 1024, 2048, 4096]),
    n=st.sampled_from([1, 4]),
)
def test_more_memory_never_gives_a_slower_plan(
    mem: float, extra: float, name: str, method: str, seq: int, n: int
) -> None:
    """The chosen plan is the fastest that fits: more memory only adds candidates."""
    data = qa_data()
    try:
        small = planner.plan(sized(mem, n), SPECS[name], data, POLICY, method=method, seq_len=seq)  # type: ignore[arg-type]
    except PlanError:
        return
    big = planner.plan(sized(mem + extra, n), SPECS[name], data, POLICY, method=method, seq_len=seq)  # type: ignore[arg-type]
    assert small.seconds_per_epoch is not None and big.seconds_per_epoch is not None
    # ties within the policy's tie band may go to the simpler, slightly slower setup
    tie = 1 + POLICY.speed.tie_fraction
    assert big.seconds_per_epoch <= small.seconds_per_epoch * tie
    assert big.setup.sequence_len == small.setup.sequence_len == seq


def test_gib_constant_is_binary() -> None:
    assert GIB == 2**30
