"""A partial fine-tune ("freeze") traced on fake tensors: the estimate's terms stay
within 5% under (10% over) the real step, with Axolotl's own unfrozen_parameters code
deciding which parameters require grad.

4-block versions of real architectures, the last 2 blocks trained (1 with the head).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("axolotl")

from axo_helper.model.facts import from_config
from axo_helper.model.presets import find_preset
from axo_helper.specs import TrainSetup
from axo_helper.trace import trace_setup
from axo_helper.trace.source import with_layers

pytestmark = pytest.mark.slow

ARCHS = (
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.2-1B",  # tied embeddings
    "Qwen/Qwen2.5-0.5B",  # qkv biases, tied
)
SETUPS: dict[str, dict[str, Any]] = {
    "freeze-gc": {"gradient_checkpointing": True},
    "freeze-nogc": {"gradient_checkpointing": False},
    "freeze-gc-flash": {"gradient_checkpointing": True, "attn_implementation": "flash_attention_2"},
    "freeze-head-gc": {"gradient_checkpointing": True, "train_head": True, "trainable_layers": 1},
    "freeze-head-nogc": {
        "gradient_checkpointing": False,
        "train_head": True,
        "trainable_layers": 1,
    },
}
TERMS = ("weights", "state", "step", "allocated")


def _raw(name: str) -> dict[str, Any]:
    hit = find_preset(name)
    assert hit is not None
    return with_layers(dict(hit[0].config), 4)


def _setup(raw: dict[str, Any], name: str, **kw: Any) -> TrainSetup:
    base: dict[str, Any] = {
        "method": "freeze",
        "trainable_layers": 2,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "attn_implementation": "sdpa",
    }
    return TrainSetup(model=from_config(raw, name=name, source="preset"), **{**base, **kw})


@pytest.mark.parametrize("name", ARCHS)
def test_freeze_terms_within_5_percent_of_the_trace(name: str) -> None:
    raw = _raw(name)
    off: list[str] = []
    for label, kw in SETUPS.items():
        result = trace_setup(raw, _setup(raw, name, **kw))
        for term in TERMS:
            err = result.error(term)
            assert err is not None, f"{label}: nothing traced for {term}"
            if err < -0.05 or err > 0.10:
                t, e = result.traced[term] / 2**30, result.estimated[term] / 2**30
                off.append(f"{label} {term}: traced {t:.4f} GiB, estimated {e:.4f} ({err:+.1%})")
    assert not off, "\n".join(off)


def test_frozen_blocks_keep_nothing_and_cost_no_state() -> None:
    """Training fewer blocks lowers the traced state and activations in proportion,
    and the trained parameters are exactly the estimate's count."""
    raw = _raw("meta-llama/Llama-3.1-8B")
    one = trace_setup(raw, _setup(raw, "l", trainable_layers=1, gradient_checkpointing=False))
    three = trace_setup(raw, _setup(raw, "l", trainable_layers=3, gradient_checkpointing=False))
    full = trace_setup(raw, _setup(raw, "l", method="full", gradient_checkpointing=False))
    assert three.traced["state"] > 2.5 * one.traced["state"]
    assert full.traced["state"] > three.traced["state"]
    assert three.traced["activations"] > 2 * one.traced["activations"]
    assert one.traced["weights"] == three.traced["weights"]
