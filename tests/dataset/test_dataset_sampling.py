"""dataset counting: exact rows, the reservoir sample, percentiles, the approximation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from dataset_rows import (
    varied_rows,
    write_jsonl,
)

from axo_helper.dataset import (
    ALPACA_NO_INPUT_PREAMBLE,
    SPECIAL_TOKENS_PER_ROW,
    approx_tokens,
    inspect,
)
from axo_helper.dataset.scan import Reservoir


def test_rows_exact_beyond_the_sample_and_sampling_is_deterministic(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "big.jsonl", varied_rows(12_345))
    a = inspect(p, max_token_rows=1000, seed=7)
    b = inspect(p, max_token_rows=1000, seed=7)
    c = inspect(p, max_token_rows=1000, seed=8)
    full = inspect(p, max_token_rows=20_000)
    assert a.rows == c.rows == full.rows == 12_345
    assert a.sampled_rows == 1000 and full.sampled_rows == 12_345
    assert a.tokens == b.tokens
    assert a.tokens.mean != c.tokens.mean  # another seed draws another sample
    # The sample estimates the full data: mean within 5%, total scaled to all rows.
    assert a.tokens.mean == pytest.approx(full.tokens.mean, rel=0.05)
    assert a.tokens.total == round(a.tokens.mean * 12_345)
    assert full.tokens.total == pytest.approx(full.tokens.mean * 12_345)


def test_reservoir_is_uniform() -> None:
    res = Reservoir(1000, seed=3)
    for i in range(100_000):
        if i == res.next:
            res.add(i, i)
    assert len(res.items) == 1000 and len(set(res.items)) == 1000
    # Uniform over 0..99,999: mean 50,000, standard error about 900.
    assert sum(res.items) / 1000 == pytest.approx(50_000, abs=4000)
    assert sum(1 for i in res.items if i >= 50_000) == pytest.approx(500, abs=60)


def test_max_includes_the_longest_row_even_when_not_sampled(tmp_path: Path) -> None:
    rows: list[dict[str, str]] = [{"text": "short"}] * 5000
    rows = [*rows[:2500], {"text": "x" * 36_000}, *rows[2500:]]
    spec = inspect(write_jsonl(tmp_path / "t.jsonl", rows), max_token_rows=10)
    assert spec.sampled_rows == 10
    assert spec.tokens.max == 10_000 + SPECIAL_TOKENS_PER_ROW["completion"]
    assert spec.tokens.p99 < 100


def test_percentiles_are_nearest_rank(tmp_path: Path) -> None:
    # Completion rows of 36*k ASCII characters are k*10 tokens + 2 by the approximation.
    rows = [{"text": "a" * (36 * k)} for k in range(1, 101)]
    t = inspect(write_jsonl(tmp_path / "t.jsonl", rows)).tokens
    assert (t.p50, t.p95, t.p99, t.max) == (502, 952, 992, 1002)
    assert t.total == sum(10 * k + 2 for k in range(1, 101))
    assert t.mean == pytest.approx(t.total / 100)


def test_approximation() -> None:
    assert approx_tokens("a" * 36) == pytest.approx(10)
    assert approx_tokens("日本語") == pytest.approx(3.0)  # CJK: one token a character
    assert approx_tokens("éé") == pytest.approx(1.0)  # other non-ASCII: half a token


def test_alpaca_estimate_includes_axolotl_prompt(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "", "output": ""}]))
    template = ALPACA_NO_INPUT_PREAMBLE + "\n\n### Instruction:\n\n\n### Response:\n"
    expected = math.ceil(len(template) / 3.6) + 2
    assert spec.tokens.max == expected


def test_token_stats_record_evenly_ranked_quantiles() -> None:
    from axo_helper.dataset.tokens import QUANTILES, token_stats

    short = token_stats([5, 1, 3], rows=3, longest=0)
    assert short.quantiles == (1, 3, 5)
    many = token_stats(list(range(1, 10_001)), rows=10_000, longest=0)
    assert len(many.quantiles) == QUANTILES
    assert list(many.quantiles) == sorted(many.quantiles)
    # Each value stands for 0.1% of the rows: the share at or below 9,900 is 99%.
    assert sum(v <= 9_900 for v in many.quantiles) == 990
