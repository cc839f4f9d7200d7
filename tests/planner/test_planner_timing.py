"""planner.timing: the time model."""

from __future__ import annotations

import pytest
from planner_helpers import mdl

from axo_helper import planner
from axo_helper.specs import (
    TrainSetup,
)


# =========================================================================== time
def test_lora_flops_are_two_thirds_of_full() -> None:
    m = mdl("meta-llama/Llama-3.1-8B")
    full = planner.flops_per_token(
        TrainSetup(model=m, method="full", gradient_checkpointing=False), 0
    )
    lora = planner.flops_per_token(
        TrainSetup(model=m, method="lora", gradient_checkpointing=False), 0
    )
    assert lora / full == pytest.approx(4 / 6)
    gc = planner.flops_per_token(TrainSetup(model=m, method="full", gradient_checkpointing=True), 0)
    assert gc / full == pytest.approx(8 / 6)
    # 6 x N for a full fine-tune, N without the (untied) input embedding.
    n = m.active_params - m.vocab_size * m.hidden_size
    assert full == pytest.approx(6 * n)
