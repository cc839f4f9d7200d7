"""Partial fine-tuning ("freeze"): its memory, FLOPs, block count and config patterns."""

from __future__ import annotations

import pytest

from axo_helper import memory
from axo_helper.config.unfrozen import read_unfrozen, unfrozen_parameters
from axo_helper.errors import UsageError
from axo_helper.model.facts import from_config
from axo_helper.model.presets import find_preset
from axo_helper.planner import freeze
from axo_helper.planner.timing import flops_per_token
from axo_helper.specs import ModelSpec, TrainSetup


def _model(name: str) -> ModelSpec:
    hit = find_preset(name)
    assert hit is not None
    return from_config(dict(hit[0].config), name=name, source="preset")


@pytest.mark.parametrize("name", ["meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.1-8B"])
@pytest.mark.parametrize("gc", [True, False])
def test_freeze_needs_less_than_full_at_the_same_micro_batch(name: str, gc: bool) -> None:
    m = _model(name)
    kw = {"model": m, "micro_batch_size": 2, "gradient_checkpointing": gc}
    full = memory.estimate(TrainSetup(method="full", **kw))
    quarter = memory.estimate(TrainSetup(method="freeze", trainable_layers=m.num_layers // 4, **kw))
    half = memory.estimate(TrainSetup(method="freeze", trainable_layers=m.num_layers // 2, **kw))
    assert quarter.total_gib < half.total_gib < full.total_gib
    assert quarter.weights_gib == pytest.approx(full.weights_gib)  # the same loaded model
    assert quarter.trainable_state_gib < 0.35 * full.trainable_state_gib
    assert quarter.activations_gib < full.activations_gib
    assert quarter.trainable_params == pytest.approx(full.trainable_params / 4, rel=0.15)


def test_training_the_head_keeps_a_graph_through_the_frozen_blocks() -> None:
    m = _model("meta-llama/Llama-3.1-8B")
    kw = {"model": m, "method": "freeze", "trainable_layers": 4, "gradient_checkpointing": False}
    plain = memory.estimate(TrainSetup(**kw))
    head = memory.estimate(TrainSetup(train_head=True, **kw))
    assert head.trainable_params - plain.trainable_params == m.vocab_size * m.hidden_size
    assert head.activations_gib > plain.activations_gib


def test_the_backward_stops_at_the_first_unfrozen_block() -> None:
    m = _model("meta-llama/Llama-3.1-8B")
    full = flops_per_token(TrainSetup(model=m, method="full", gradient_checkpointing=False), 1024)
    lora = flops_per_token(TrainSetup(model=m, method="lora", gradient_checkpointing=False), 1024)
    part = flops_per_token(
        TrainSetup(model=m, method="freeze", trainable_layers=8, gradient_checkpointing=False), 1024
    )
    assert part < lora < full
    # Every block trained: the full fine-tune's count, less the frozen head's weight
    # gradient and its recompute (checkpointing wraps the blocks, not the head).
    every = TrainSetup(model=m, method="freeze", trainable_layers=m.num_layers)
    head = m.vocab_size * m.hidden_size
    assert flops_per_token(every, 1024) == pytest.approx(
        flops_per_token(TrainSetup(model=m, method="full"), 1024) - 4 * head, rel=0.005
    )


def test_the_patterns_read_back_to_the_same_blocks() -> None:
    m = _model("meta-llama/Llama-3.2-3B")
    s = TrainSetup(model=m, method="freeze", trainable_layers=3, train_head=True)
    patterns = unfrozen_parameters(s)
    assert patterns == ["^model.layers.(25|26|27).", "^model.norm.", "^model.embed_tokens."]
    found = read_unfrozen(patterns, m)
    assert found is not None and (found.trainable_layers, found.train_head) == (3, True)
    assert read_unfrozen(["^model.layers.(3|4)."], m) is None  # not the last blocks


def test_freeze_layers_counts_and_fractions() -> None:
    from axo_helper.planner.policy import DEFAULT_FREEZE

    class _P:
        freeze = DEFAULT_FREEZE

    m = _model("meta-llama/Llama-3.1-8B")
    assert freeze.trainable_layers(m, _P(), None) == 8  # type: ignore[arg-type]
    assert freeze.trainable_layers(m, _P(), 0.5) == 16  # type: ignore[arg-type]
    assert freeze.trainable_layers(m, _P(), 40) == 32  # type: ignore[arg-type]
    assert freeze.check_override(None, 4) == "freeze"
    with pytest.raises(UsageError):
        freeze.check_override("lora", 4)
    with pytest.raises(UsageError):
        freeze.check_override(None, 2.5)
