"""DDP, ZeRO, FSDP and offload: what each splits across ranks."""

from __future__ import annotations

import pytest
from memory_fixtures import LLAMA3_PARAMS, setup

from axo_helper.memory.estimate import estimate
from axo_helper.memory.state import trainable_state
from axo_helper.memory.weights import weights
from axo_helper.specs import GIB


def test_zero3_over_8_gpus_divides_states_and_weights() -> None:
    one = estimate(setup(method="full", distributed="zero3", num_gpus=1))
    eight = estimate(setup(method="full", distributed="zero3", num_gpus=8))
    assert eight.trainable_state_gib == pytest.approx(one.trainable_state_gib / 8, rel=0.05)
    assert eight.weights_gib == pytest.approx(one.weights_gib / 8, rel=1e-6)
    # activations and logits are never sharded
    assert eight.logits_gib == pytest.approx(one.logits_gib)
    assert eight.activations_gib == pytest.approx(one.activations_gib)


def test_zero_stages_shard_progressively() -> None:
    kw: dict[str, object] = {"method": "full", "num_gpus": 8}
    state = {
        d: trainable_state(setup(distributed=d, **kw)).gpu
        for d in ("ddp", "zero1", "zero2", "zero3")
    }
    assert state["ddp"] > state["zero1"] > state["zero2"] >= state["zero3"]
    w = {d: weights(setup(distributed=d, **kw)).gpu for d in ("zero2", "zero3")}
    assert w["zero3"] < w["zero2"]


def test_ddp_replicates_and_adds_gradient_buckets() -> None:
    single = estimate(setup(method="full"))
    ddp = estimate(setup(method="full", distributed="ddp", num_gpus=4))
    assert ddp.weights_gib == pytest.approx(single.weights_gib)
    grads = LLAMA3_PARAMS * 2 / GIB
    assert ddp.overhead_gib - single.overhead_gib >= grads


def test_fsdp_gradient_accumulation_keeps_gradients_unsharded() -> None:
    kw: dict[str, object] = {"method": "full", "distributed": "fsdp", "num_gpus": 8}
    ga1 = trainable_state(setup(gradient_accumulation_steps=1, **kw))
    ga4 = trainable_state(setup(gradient_accumulation_steps=4, **kw))
    assert ga4.gpu - ga1.gpu == pytest.approx(LLAMA3_PARAMS * 2 * (1 - 1 / 8))


def test_lora_base_is_sharded_only_by_zero3_or_fsdp() -> None:
    base = weights(setup()).gpu
    assert weights(setup(distributed="zero2", num_gpus=4)).gpu < base  # adapters only
    assert weights(setup(distributed="zero2", num_gpus=4)).gpu > base * 0.9
    assert weights(setup(distributed="zero3", num_gpus=4)).gpu < base / 3


def test_qlora_fsdp_shards_only_with_bf16_quant_storage() -> None:
    kw: dict[str, object] = {"method": "qlora", "distributed": "fsdp", "num_gpus": 4}
    without = estimate(setup(**kw))
    with_storage = estimate(setup(quant_storage_bf16=True, **kw))
    assert with_storage.weights_gib < without.weights_gib / 3
    assert any("quant_storage" in n for n in without.notes)


def test_cpu_offload_moves_optimizer_state_to_host() -> None:
    kw: dict[str, object] = {"method": "full", "distributed": "zero2", "num_gpus": 2}
    on_gpu = estimate(setup(**kw))
    offloaded = estimate(setup(cpu_offload=True, **kw))
    assert offloaded.trainable_state_gib < on_gpu.trainable_state_gib / 4
    assert offloaded.host_gib > 0 == on_gpu.host_gib
