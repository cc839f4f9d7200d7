"""planner.plan with measured corrections (a calibration.Calibration value)."""

from __future__ import annotations

import pytest
from planner_helpers import POLICY, budget_hw, gpu, mdl, qa_data

from axo_helper import planner
from axo_helper.calibration import Calibration, Measurement
from axo_helper.specs import ModelSpec, TrainSetup


def runs(setup: TrainSetup, ratio: float, n: int = 1, tokens: float | None = None) -> Calibration:
    """n measured runs of `setup` on the test GPU, measured = ratio x predicted."""
    row = Measurement.from_setup(
        setup, gpu="test", predicted_gib=10.0, measured_gib=10.0 * ratio, tokens_per_s=tokens
    )
    return Calibration(gpu="test", rows=(row,) * n)


def test_calibration_corrects_the_estimate(toy: ModelSpec) -> None:
    hw = budget_hw(40.0)
    plain = planner.plan(hw, toy, None, POLICY, method="full", seq_len=512)
    calibration = runs(plain.setup, 1.3, n=3)
    corrected = planner.plan(
        hw, toy, None, POLICY, method="full", seq_len=512, calibration=calibration
    )
    assert (plain.micro_batch_size, plain.setup.gradient_checkpointing) == (4, False)
    assert plain.memory.total_gib == pytest.approx(34.0)
    # 34 GiB x 1.3 > 40: the measurement rules the plain setup out; the fastest setup that
    # fits corrected is 8-bit Adam states at the same micro batch, (10 + 2 + 16) x 1.3.
    assert corrected.setup != plain.setup
    assert corrected.memory.total_gib == pytest.approx(28 * 1.3)
    assert corrected.memory.total_gib <= corrected.budget_gib
    assert corrected.calibrated_from == 3 and plain.calibrated_from == 0


def test_runs_of_another_method_do_not_correct(toy: ModelSpec) -> None:
    hw = budget_hw(40.0)
    plain = planner.plan(hw, toy, None, POLICY, method="full", seq_len=512)
    lora_runs = runs(TrainSetup(model=toy, method="lora"), 1.3, n=3)
    p = planner.plan(hw, toy, None, POLICY, method="full", seq_len=512, calibration=lora_runs)
    assert p.setup == plain.setup and p.calibrated_from == 0


def test_measured_throughput_replaces_assumed_utilisation() -> None:
    hw, llama, data = gpu("rtx4090"), mdl("meta-llama/Llama-3.1-8B"), qa_data()
    first = planner.plan(hw, llama, data, POLICY)
    assert first.tokens_per_second is not None
    # Measured exactly as predicted (no memory correction), at a round figure 1% faster
    # than the assumed utilisation gives.
    measured = float(round(first.tokens_per_second * 1.01))
    p = planner.plan(hw, llama, data, POLICY, calibration=runs(first.setup, 1.0, tokens=measured))
    assert p.setup == first.setup
    assert p.assumed_mfu is None and p.tokens_per_second == measured
    assert p.seconds_per_epoch == pytest.approx(p.tokens_per_epoch / measured)  # type: ignore[operator]
