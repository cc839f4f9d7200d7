"""Packing and the batch in tokens: the same content trains the same way."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from planner_helpers import POLICY, gpu, mdl

from axo_helper import planner
from axo_helper.dataset import inspect
from axo_helper.planner import packing
from axo_helper.planner.settings import batch_flattening
from axo_helper.specs import Plan

WORDS = [
    "the",
    "model",
    "learns",
    "how",
    "to",
    "answer",
    "short",
    "questions",
    "about",
    "data",
    "and",
    "text",
    "clearly",
]


def _qa_pairs(n: int = 2000) -> list[tuple[str, str]]:
    rng = random.Random(0)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    # ~200 tokens per row: alpaca's prompt template puts its p99 over 256, q/a keys not.
    return [(text(rng.randint(15, 40)), text(rng.randint(60, 110))) for _ in range(n)]


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("qa")
    pairs = _qa_pairs()
    alpaca, qa = root / "alpaca.jsonl", root / "qa.jsonl"
    alpaca.write_text(
        "".join(json.dumps({"instruction": q, "input": "", "output": a}) + "\n" for q, a in pairs)
    )
    qa.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return alpaca, qa


def _step_tokens(p: Plan) -> float:
    s = p.setup
    assert p.row_fate is not None
    per_seq = (
        s.sequence_len * POLICY.packing_efficiency if s.sample_packing else p.row_fate.mean_len
    )
    return s.micro_batch_size * p.gradient_accumulation_steps * s.num_gpus * per_seq


@pytest.mark.parametrize("gpu_name", ["a100-80gb", "rtx4090"])
def test_same_content_packs_the_same_and_steps_alike(
    two_datasets: tuple[Path, Path], gpu_name: str
) -> None:
    model = mdl("meta-llama/Llama-3.1-8B")
    # The token target alone: these 2,000 rows are few enough for the steps-per-epoch
    # floor to cap accumulation (tested on its own below).
    policy = replace(POLICY, min_steps_per_epoch=1)
    plans = [planner.plan(gpu(gpu_name), model, inspect(path), policy) for path in two_datasets]
    a, q = plans
    # The lengths differ (alpaca's template adds tokens), the decision must not.
    assert a.data is not None and q.data is not None
    assert a.data.tokens.p99 > 256 >= q.data.tokens.p99
    assert a.setup.sample_packing and q.setup.sample_packing
    ta, tq = _step_tokens(a), _step_tokens(q)
    assert abs(ta - tq) <= 0.25 * max(ta, tq), (ta, tq)
    for p in plans:
        assert abs(_step_tokens(p) - POLICY.target_tokens_per_step) <= 0.25 * (
            POLICY.target_tokens_per_step
        )
        assert "0.5 x sequence_len" in p.reasons["sample_packing"]
        assert "tokens per optimizer step" in p.reasons["gradient_accumulation_steps"]
    assert "raised to 512 to pack" in q.reasons["sequence_len"]


def test_long_samples_stay_unpacked_and_go_padding_free() -> None:
    from planner_helpers import qa_data

    data = qa_data(p50=1500, p95=1900, p99=2000, mx=2040, mean=1500.0)
    p = planner.plan(gpu("h100"), mdl("Qwen/Qwen2.5-0.5B"), data, POLICY)
    assert not p.setup.sample_packing
    assert "> 0.5 x sequence_len" in p.reasons["sample_packing"]
    assert p.micro_batch_size > 1
    assert p.settings is not None and p.settings.batch_flattening is not None
    assert p.settings.batch_flattening.value is True
    # The step is sized in tokens of the (unpacked) samples, not in sequences.
    assert abs(_step_tokens(p) - POLICY.target_tokens_per_step) <= 0.25 * (
        POLICY.target_tokens_per_step
    )


def test_batch_flattening_only_where_it_removes_padding() -> None:
    from dataclasses import replace

    from planner_helpers import qa_data

    p = planner.plan(gpu("h100"), mdl("Qwen/Qwen2.5-0.5B"), qa_data(), POLICY)
    s = replace(p.setup, sample_packing=False, micro_batch_size=4)
    assert batch_flattening(replace(s, attn_implementation="flash_attention_2")) is not None
    assert batch_flattening(replace(s, attn_implementation="sdpa")) is None
    assert batch_flattening(replace(s, micro_batch_size=1)) is None
    assert batch_flattening(replace(s, sample_packing=True)) is None


def test_explicit_seq_len_is_never_raised() -> None:
    from planner_helpers import qa_data

    data = qa_data(p50=180, p95=230, p99=240, mx=250, mean=180.0)
    got = packing.choose(data, 256, POLICY, cpu=False, limit=4096, explicit=True)
    assert got.seq_len == 256 and not got.on
    auto = packing.choose(data, 256, POLICY, cpu=False, limit=4096, explicit=False)
    assert auto.seq_len == 512 and auto.on


def test_accumulation_aims_at_the_token_target() -> None:
    target = POLICY.target_tokens_per_step
    assert packing.accumulation(POLICY, 2048.0, 1, 1) == round(target / 2048)
    assert packing.accumulation(POLICY, 200.0, 8, 1) == round(target / 1600)
    assert packing.accumulation(POLICY, 8192.0, 8, 8) == 1  # never below one


@pytest.mark.parametrize(
    ("section", "key"),
    [("batch", "target_tokens_per_step"), ("sample_packing", "min_sequence_len")],
)
def test_new_policy_keys_are_validated(section: str, key: str) -> None:
    from axo_helper.errors import AxoHelperError
    from axo_helper.resources import load_preset

    raw = copy.deepcopy(load_preset("policy.yaml"))
    raw[section][key] = 0
    with pytest.raises(AxoHelperError, match=rf"{section}\.{key}"):
        planner.parse_policy(raw)


def test_small_data_keeps_enough_optimizer_steps() -> None:
    """10,000 short rows pack into ~1,000 sequences: a 32k-token step would leave ~15
    steps per epoch; accumulation is capped so an epoch keeps min_steps_per_epoch."""
    from planner_helpers import qa_data

    small = qa_data(rows=10_000, p50=40, p95=60, p99=70, mx=80, mean=47)
    p = planner.plan(gpu("rtx4090"), mdl("Qwen/Qwen2.5-0.5B"), small, POLICY, method="lora")
    assert p.steps_per_epoch is not None and p.steps_per_epoch >= POLICY.min_steps_per_epoch
    assert "capped so an epoch keeps" in p.reasons["gradient_accumulation_steps"]
    big = qa_data(rows=200_000, p50=40, p95=60, p99=70, mx=80, mean=47)
    q = planner.plan(gpu("rtx4090"), mdl("Qwen/Qwen2.5-0.5B"), big, POLICY, method="lora")
    assert "capped" not in q.reasons["gradient_accumulation_steps"]
    assert q.gradient_accumulation_steps > p.gradient_accumulation_steps
