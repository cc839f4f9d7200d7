"""Activation offloading: the checkpointed blocks' inputs move to host memory, the last
few stay; without checkpointing there is nothing it moves (Axolotl refuses it)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_helpers import mdl

from axo_helper import memory
from axo_helper.memory.constants import ACTIVATION_OFFLOAD_RESIDENT
from axo_helper.specs import GIB, TrainSetup


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_offloaded_block_inputs_move_from_gpu_to_host(method: str) -> None:
    m = mdl("meta-llama/Llama-3.1-8B")
    base = TrainSetup(
        model=m, method=method, sequence_len=8192, micro_batch_size=2,
        attn_implementation="flash_attention_2",
    )
    off = replace(base, activation_offloading=True)
    a, b = memory.estimate(base), memory.estimate(off)
    # one block input per offloaded layer: tokens x hidden x 2 bytes (bf16) — for full
    # fine-tuning with flash attention the residual stream stays 16-bit too
    per_layer = 2 * 8192 * m.hidden_size * 2 / GIB
    moved = (m.num_layers - ACTIVATION_OFFLOAD_RESIDENT) * per_layer
    assert b.host_gib - a.host_gib == pytest.approx(moved, rel=0.01)
    assert a.activations_gib - b.activations_gib == pytest.approx(moved, rel=0.01)
    assert b.total_gib < a.total_gib
    assert any("activation offloading" in n for n in b.notes)


def test_no_offloading_without_checkpointing_and_for_short_models() -> None:
    m = mdl("meta-llama/Llama-3.1-8B")
    no_gc = TrainSetup(model=m, gradient_checkpointing=False, activation_offloading=True)
    assert memory.estimate(no_gc).host_gib == 0.0
    tiny = mdl("HuggingFaceTB/SmolLM2-135M")
    few = replace(tiny, num_layers=ACTIVATION_OFFLOAD_RESIDENT)
    s = TrainSetup(model=few, activation_offloading=True)
    assert memory.estimate(s).host_gib == 0.0  # every input is among the resident ones
