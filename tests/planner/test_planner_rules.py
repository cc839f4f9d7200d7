"""The planner's own rules on a toy estimator (ladder order, micro batch cap, DDP vs ZeRO-3),
independently of the memory model's numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_helpers import POLICY, budget_hw, fits

from axo_helper import planner
from axo_helper.planner import Policy
from axo_helper.specs import (
    ModelSpec,
)


# Toy memory (planner_helpers.toy_estimate): weights 10, optimizer states 8 (2 with 8-bit
# Adam), activations 4 per micro-batch sample without checkpointing, 1 with. Time: the
# real time model, where checkpointing costs a third more FLOPs (one more forward) and a
# micro step's utilisation grows with its tokens x hidden (4096 here).
@pytest.mark.parametrize(
    ("budget", "seq", "mb", "gc", "optimizer"),
    [
        # seq 512: the busy cap is 4 (4 x 512 tokens x 4096 hidden = 2**23).
        (40.0, 512, 4, False, "adamw_torch_fused"),  # 18 + 16 = 34: the fastest fits
        (30.0, 512, 4, False, "adamw_bnb_8bit"),  # default no-GC: mb 2 only; 8-bit: 12 + 16
        (22.0, 512, 2, False, "adamw_bnb_8bit"),  # 12 + 8 = 20, no recompute beats GC at 4
        (19.0, 512, 4, True, "adamw_bnb_8bit"),  # no GC reaches mb 1 only: 512 tokens idle
        # seq 2048: the cap is 1; no recompute is the faster micro step.
        (19.0, 2048, 1, False, "adamw_bnb_8bit"),  # 12 + 4 = 16 beats default + GC (19)
        (13.0, 2048, 1, True, "adamw_bnb_8bit"),  # 12 + 1 = 13: only this fits
    ],
)
def test_the_fastest_setup_that_fits(
    toy: ModelSpec, budget: float, seq: int, mb: int, gc: bool, optimizer: str
) -> None:
    p = planner.plan(budget_hw(budget), toy, None, POLICY, method="full", seq_len=seq)
    got = (p.micro_batch_size, p.setup.gradient_checkpointing, p.setup.optimizer)
    assert got == (mb, gc, optimizer)
    assert p.budget_gib == pytest.approx(budget)
    assert fits(p)
    # every rejected variant that fits says it is slower (or as fast and less simple)
    for r in p.rejected:
        assert "slower" in r.reason or "needs" in r.reason or "as fast" in r.reason, r


def _default_optimizer_only(policy: Policy) -> Policy:
    return replace(policy, ladder=tuple(v for v in policy.ladder if v.optimizer == "default"))


def test_checkpointing_only_when_it_is_faster(toy: ModelSpec) -> None:
    policy = _default_optimizer_only(POLICY)
    # seq 512, 30 GiB: no GC fits mb 2 (26), GC mb 4 (22). A third more FLOPs costs more
    # than the busier micro step gains: no GC at micro batch 2.
    p = planner.plan(budget_hw(30.0), toy, None, policy, method="full", seq_len=512)
    assert (p.micro_batch_size, p.setup.gradient_checkpointing) == (2, False)
    assert p.reasons["gradient_checkpointing"].startswith("off: no recompute is faster")
    gc = [r for r in p.rejected if "(gradient checkpointing" in r.method]
    assert gc and gc[0].reason.startswith("slower")
    # seq 256: no GC reaches micro batch 2 (26) only, 512 tokens that leave the GPU idle;
    # GC reaches 8 (18 + 8 = 26): the busier micro step wins despite the recompute.
    p = planner.plan(budget_hw(26.0), toy, None, policy, method="full", seq_len=256)
    assert (p.micro_batch_size, p.setup.gradient_checkpointing) == (8, True)
    assert p.reasons["gradient_checkpointing"].startswith("on: faster here")


def test_eight_bit_optimizer_when_it_fits_a_faster_setup(toy: ModelSpec) -> None:
    # 19 GiB at 2048: default AdamW fits only with checkpointing (18 + 1); 8-bit states
    # fit without it (12 + 4), which skips the recompute.
    p = planner.plan(budget_hw(19.0), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.optimizer == "adamw_bnb_8bit" and not p.setup.gradient_checkpointing
    # 17 GiB: the default optimizer does not fit at all.
    p = planner.plan(budget_hw(17.0), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.optimizer == "adamw_bnb_8bit" and "needed" in p.reasons["optimizer"]


def test_ddp_when_a_replica_fits_and_is_faster(toy: ModelSpec) -> None:
    # 2 GPUs over PCIe, seq 2048: a replica (DDP) with 8-bit states fits (16); ZeRO-3
    # would gather all 16 GB of weights twice per micro step over PCIe: slower.
    p = planner.plan(budget_hw(20.0, n=2), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.distributed == "ddp"
    assert "faster" in p.reasons["distributed"]
    sharded = [r for r in p.rejected if POLICY.sharded in r.method]
    assert sharded and all("slower" in r.reason for r in sharded)
    # 9 GiB: no replica fits (12 + 1 at least): sharding is the only way.
    p = planner.plan(budget_hw(9.0, n=2), toy, None, POLICY, method="full", seq_len=2048)
    assert p.setup.distributed == POLICY.sharded
    assert "a replica of the weights needs" in p.reasons["distributed"]


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
