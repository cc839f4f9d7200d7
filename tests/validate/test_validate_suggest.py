"""validate.memory's suggestion: the smallest edit that fits, by fit.largest_fit's rule."""

from __future__ import annotations

import pytest
from planner_helpers import mdl

from axo_helper import memory
from axo_helper.fit import largest_fit
from axo_helper.specs import GPU, Hardware, MemoryBreakdown, TrainSetup
from axo_helper.validate.axolotl import _capabilities
from axo_helper.validate.memory import _suggest

LLAMA_1B = "meta-llama/Llama-3.2-1B"


def toy(setup: TrainSetup) -> MemoryBreakdown:
    """10 GiB of weights; activations linear in micro batch and length, x0.25 checkpointed."""
    act = (
        setup.micro_batch_size
        * setup.sequence_len
        / 1024
        * (0.25 if setup.gradient_checkpointing else 1.0)
    )
    return MemoryBreakdown(10.0, 0.0, act, 0.0, 0.0, 10.0 + act, 1)


@pytest.fixture
def toy_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "estimate", toy)


def setup(**kw: object) -> TrainSetup:
    base: dict[str, object] = {
        "model": mdl(LLAMA_1B),
        "method": "lora",
        "micro_batch_size": 8,
        "sequence_len": 1024,
        "gradient_checkpointing": False,
    }
    return TrainSetup(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.usefixtures("toy_memory")
@pytest.mark.parametrize(
    ("changes", "budget", "expected"),
    [
        (
            {},
            15.5,
            "micro_batch_size 5 would fit (raise gradient_accumulation_steps to keep the batch)",
        ),
        (
            {"micro_batch_size": 1},
            10.6,
            "gradient_checkpointing: true with micro_batch_size 1 would fit",
        ),
        ({}, 10.3, "gradient_checkpointing: true with micro_batch_size 1 would fit"),
        (
            {"sequence_len": 4096, "micro_batch_size": 1, "gradient_checkpointing": True},
            10.6,
            "micro_batch_size 1, gradient checkpointing and sequence_len 2048 would fit",
        ),
        (
            {"sequence_len": 4096, "micro_batch_size": 1, "gradient_checkpointing": True},
            10.3,
            "micro_batch_size 1, gradient checkpointing and sequence_len 1024 would fit",
        ),
        (
            {"micro_batch_size": 1},
            10.05,
            "no simple edit fits; try adapter: qlora with load_in_4bit: true, or a larger GPU",
        ),
        (
            {"micro_batch_size": 1, "method": "full"},
            10.05,
            "no simple edit fits; try adapter: lora (or qlora), or more GPUs",
        ),
        (
            {"micro_batch_size": 1, "method": "qlora"},
            10.05,
            "no simple edit fits; a larger GPU or several GPUs are needed",
        ),
    ],
)
def test_each_suggestion_in_the_order_an_operator_tries_them(
    changes: dict[str, object], budget: float, expected: str
) -> None:
    assert _suggest(setup(**changes), budget) == expected


def test_the_suggested_micro_batch_is_the_one_fit_would_pick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An estimate that dips again at micro batch 6: the descending search named 6, while
    the planner's rule stops at the first size over budget (4 fits, 5 does not)."""

    def bumpy(s: TrainSetup) -> MemoryBreakdown:
        total = {5: 20.0, 6: 12.0, 7: 20.0}.get(s.micro_batch_size, 10.0 + s.micro_batch_size / 2)
        return MemoryBreakdown(total, 0.0, 0.0, 0.0, 0.0, total, 1)

    monkeypatch.setattr(memory, "estimate", bumpy)
    found = largest_fit(lambda mb: setup(micro_batch_size=mb), 13.0, range(1, 8))
    assert found.micro_batch == 4
    assert _suggest(setup(), 13.0).startswith("micro_batch_size 4 would fit")


@pytest.mark.parametrize(
    ("cc", "vendor", "fp8", "tf32", "sm"),
    [
        ((9, 0), "nvidia", True, True, "sm_90"),
        ((7, 5), "nvidia", False, False, "sm_75"),
        (None, "amd", False, False, None),
    ],
)
def test_axolotls_capability_dict_uses_the_gpu_flags(
    cc: tuple[int, int] | None, vendor: str, fp8: bool, tf32: bool, sm: str | None
) -> None:
    pytest.importorskip("torch")
    g = GPU(name="x", memory_gib=80.0, compute_capability=cc, vendor=vendor)  # type: ignore[arg-type]
    caps = _capabilities(Hardware(gpus=(g, g), source="profile"))
    assert caps is not None
    assert caps[0] == {"bf16": True, "fp8": fp8, "tf32": tf32, "n_gpu": 2, "compute_capability": sm}
    assert (caps[0]["fp8"], caps[0]["tf32"], caps[0]["compute_capability"]) == (g.fp8, g.tf32, g.sm)
    assert _capabilities(Hardware(gpus=(), source="cpu")) is None
