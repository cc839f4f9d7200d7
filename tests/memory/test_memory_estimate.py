"""memory.estimate as a whole: the breakdown, monotonicity, imports, the dev set.

Expected values are derived in the tests from the architecture (or are published
counts, named where used), never copied from the estimator's output.
"""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_fixtures import setup, total

from axo_helper.memory.constants import CUDA_CONTEXT_GIB
from axo_helper.memory.estimate import estimate, reserved_gib


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
@pytest.mark.parametrize("distributed", ["none", "ddp", "zero2", "zero3", "fsdp"])
def test_breakdown_sums_to_total(method: str, distributed: str) -> None:
    n = 1 if distributed == "none" else 4
    est = estimate(setup(method=method, distributed=distributed, num_gpus=n))
    parts = (
        est.weights_gib
        + est.trainable_state_gib
        + est.activations_gib
        + est.logits_gib
        + est.overhead_gib
    )
    assert parts == pytest.approx(est.total_gib)
    assert 0 < est.allocated_gib < est.total_gib
    assert est.total_gib - est.allocated_gib >= CUDA_CONTEXT_GIB


def test_methods_order_full_lora_qlora() -> None:
    assert total(method="full") > total(method="lora") > total(method="qlora")


setups = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["full", "lora", "qlora"]),
        "gradient_checkpointing": st.booleans(),
        "attn_implementation": st.sampled_from(["flash_attention_2", "sdpa", "eager"]),
        "optimizer": st.sampled_from(["adamw_torch", "adamw_torch_fused", "adamw_bnb_8bit"]),
        "distributed": st.sampled_from(["none", "ddp", "zero2", "zero3", "fsdp"]),
        "fused_cross_entropy": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(kw=setups, seq=st.integers(64, 16384), extra=st.integers(1, 4096), mb=st.integers(1, 16))
def test_monotonic_in_sequence_length(kw: dict[str, object], seq: int, extra: int, mb: int) -> None:
    n = 1 if kw["distributed"] == "none" else 4
    a = total(sequence_len=seq, micro_batch_size=mb, num_gpus=n, **kw)
    b = total(sequence_len=seq + extra, micro_batch_size=mb, num_gpus=n, **kw)
    assert b >= a


@settings(max_examples=60, deadline=None)
@given(kw=setups, seq=st.integers(64, 8192), mb=st.integers(1, 32), more=st.integers(1, 8))
def test_monotonic_in_micro_batch(kw: dict[str, object], seq: int, mb: int, more: int) -> None:
    n = 1 if kw["distributed"] == "none" else 4
    a = total(sequence_len=seq, micro_batch_size=mb, num_gpus=n, **kw)
    b = total(sequence_len=seq, micro_batch_size=mb + more, num_gpus=n, **kw)
    assert b >= a


def test_memory_module_does_not_import_torch() -> None:
    code = (
        "import sys, axo_helper.memory as m; "
        "bad = [x for x in ('torch', 'transformers', 'axolotl') if x in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- dev set
DEV_CSV = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "vram-dev.csv"


def test_dev_set_median_error_within_target() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import estimator_error as bench
    finally:
        sys.path.pop(0)
    cases = bench.load_cases(bench.DEFAULT_CSV, bench.DEFAULT_MODELS)
    with DEV_CSV.open(newline="") as f:
        assert len(cases) == sum(1 for _ in csv.DictReader(f))
    errors = [abs(bench.predict(c) - c.measured_gib) / c.measured_gib for c in cases]
    assert statistics.median(errors) < 0.15


def test_reserved_sits_between_allocated_and_total() -> None:
    for kw in ({}, {"method": "full", "distributed": "zero3", "num_gpus": 8}):
        s = setup(**kw)
        est = estimate(s)
        assert est.allocated_gib < reserved_gib(est, s) < est.total_gib
