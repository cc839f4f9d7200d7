"""The planner's own rules on a toy estimator (ladder order, micro batch cap, DDP vs ZeRO-3),
independently of the memory model's numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_helpers import POLICY, budget_hw, fits

from axo_helper import planner
from axo_helper.specs import (
    ModelSpec,
)


@pytest.mark.parametrize(
    ("budget", "seq", "mb", "gc", "optimizer"),
    [
        # seq 512: the busy cap is 4 (4 x 512 tokens x 4096 hidden = 2**23).
        (40.0, 512, 4, False, "adamw_torch_fused"),  # 18 + 4x4 = 34: no GC reaches the cap
        (30.0, 512, 4, True, "adamw_torch_fused"),  # no GC: mb 2 only; GC: 18 + 4 = 22
        (22.0, 512, 4, True, "adamw_torch_fused"),  # GC: exactly 22
        (19.0, 512, 4, True, "adamw_bnb_8bit"),  # default + GC: mb 1 only; 8-bit + GC: 12 + 4
        (17.0, 512, 4, True, "adamw_bnb_8bit"),  # default fails entirely
        # seq 2048: the cap is 1, so the first rung that fits at all wins.
        (19.0, 2048, 1, True, "adamw_torch_fused"),
        (16.0, 2048, 1, False, "adamw_bnb_8bit"),  # 12 + 4 = 16
        (13.0, 2048, 1, True, "adamw_bnb_8bit"),  # 12 + 1 = 13
    ],
)
def test_ladder_order(
    toy: ModelSpec, budget: float, seq: int, mb: int, gc: bool, optimizer: str
) -> None:
    p = planner.plan(budget_hw(budget), toy, None, POLICY, method="full", seq_len=seq)
    got = (p.micro_batch_size, p.setup.gradient_checkpointing, p.setup.optimizer)
    assert got == (mb, gc, optimizer)
    assert p.budget_gib == pytest.approx(budget)
    assert fits(p)


def test_gc_only_when_it_reaches_a_bigger_micro_batch(toy: ModelSpec) -> None:
    # seq 512 -> the busy cap is 4. 30 GiB: no-GC fits mb 2 (26), GC fits mb 4 (22).
    p = planner.plan(budget_hw(30.0), toy, None, POLICY, method="full", seq_len=512)
    assert (p.micro_batch_size, p.setup.gradient_checkpointing) == (4, True)
    assert any(
        "no gradient checkpointing" in r.method and "micro batch 2" in r.reason for r in p.rejected
    )
    # 34 GiB: no-GC reaches the cap (18 + 16): faster, same micro batch.
    p = planner.plan(budget_hw(34.0), toy, None, POLICY, method="full", seq_len=512)
    assert (p.micro_batch_size, p.setup.gradient_checkpointing) == (4, False)
    assert "off" in p.reasons["gradient_checkpointing"]


def test_eight_bit_optimizer_only_when_needed(toy: ModelSpec) -> None:
    p = planner.plan(budget_hw(19.0), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.optimizer == "adamw_torch_fused"  # 18 + 1 (GC, mb 1) fits
    p = planner.plan(budget_hw(17.0), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.optimizer == "adamw_bnb_8bit" and "needed to fit" in p.reasons["optimizer"]


def test_ddp_when_a_replica_fits_else_sharded(toy: ModelSpec) -> None:
    # 2 GPUs, seq 2048: cap 1. Replica: 18 + 1 (GC) = 19.
    p = planner.plan(budget_hw(20.0, n=2), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.distributed == "ddp"
    p = planner.plan(budget_hw(14.0, n=2), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.distributed == POLICY.sharded  # 9 + 4 (no GC) = 13
    assert not p.setup.gradient_checkpointing
    assert "replica needs" in p.reasons["distributed"]


def test_micro_batch_capped_by_effective_batch_per_gpu(toy: ModelSpec) -> None:
    p = planner.plan(budget_hw(500.0, n=8), toy, None, POLICY, method="full", seq_len=256)
    assert p.micro_batch_size == 2  # 16 sequences / 8 GPUs
    # 2 x 8 x 256 tokens = 4k per micro step: accumulation makes up the 32k target.
    assert p.gradient_accumulation_steps == 8 and p.effective_batch == 128


def test_full_is_skipped_when_only_an_8bit_optimizer_fits(toy: ModelSpec) -> None:
    small = replace(toy, total_params=1_000_000_000)
    p = planner.plan(budget_hw(17.0), small, None, POLICY, seq_len=2048)
    assert p.method == "lora"
    assert any(r.method == "full" and "default optimizer" in r.reason for r in p.rejected)
