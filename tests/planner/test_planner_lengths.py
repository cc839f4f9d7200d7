"""Issue 11, cases 1 and 2: what Axolotl does with each row at the chosen sequence_len.

Case 1: chats longer than a shrunk sequence_len are all dropped (Axolotl's default
excess_length_strategy: drop), so the planner must not shrink below the length that keeps
policy.min_rows_kept of the rows. Case 2: completion rows are split into sequence_len
chunks, so steps and tokens count the chunks.
"""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from axo_helper import planner
from axo_helper.config.build import build_config
from axo_helper.errors import AxoHelperError, PlanError
from axo_helper.planner.lengths import row_fate, shortest_allowed
from axo_helper.specs import DataSpec, TokenStats
from tests.planner_helpers import POLICY, gpu, mdl, qa_data

CHARS_PER_TOKEN = 3.6  # dataset.tokens' approximation: lengths below are in its tokens


def _text(tokens: float) -> str:
    n = int(tokens * CHARS_PER_TOKEN)
    return ("lorem ipsum " * (n // 12 + 1))[:n]


def _chats(path: Path, rows: int = 120) -> Path:
    """OpenAI-style chats with a system turn, median ~3,100 tokens."""
    rnd = random.Random(0)
    with path.open("w") as f:
        for _ in range(rows):
            total = rnd.gauss(3100, 350)
            turns = [
                {"role": "system", "content": _text(60)},
                {"role": "user", "content": _text(total * 0.3)},
                {"role": "assistant", "content": _text(total * 0.7 - 60)},
            ]
            f.write(json.dumps({"messages": turns}) + "\n")
    return path


def _completion(rows: int, length: int) -> DataSpec:
    """Completion documents of ~`length` tokens, with the sample recorded (case 2)."""
    sample = tuple(sorted(length - 500 + (i * 1000) // rows for i in range(rows)))
    mean = sum(sample) / rows
    stats = TokenStats(
        p50=sample[rows // 2],
        p95=sample[int(rows * 0.95)],
        p99=sample[-1],
        max=sample[-1],
        mean=mean,
        total=sum(sample),
        quantiles=sample,
    )
    return DataSpec(
        path="docs.jsonl",
        files=("docs.jsonl",),
        type="completion",
        fields={},
        rows=rows,
        sampled_rows=rows,
        tokens=stats,
        tokenizer=None,
        approximate=True,
    )


CASE_1 = [
    ("--gpu", "t4", "--model", "meta-llama/Llama-3.1-8B"),
    ("--gpu", "rtx4090", "--model", "meta-llama/Llama-3.2-3B", "--method", "full"),
]


@pytest.mark.parametrize("args", CASE_1, ids=["t4-llama8b", "rtx4090-llama3b-full"])
def test_case_1_long_chats_are_not_shrunk_away(
    cli: Any, tmp_path: Path, args: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Halving to 2048 (1024 for the 3B full fine-tune) would drop every row. Where nothing
    # fits at the length that keeps 99% of the rows, the plan fails and names what a
    # shorter length would cost. With Liger's fused cross-entropy both cases fit at 4096:
    # here it is not installed, and the hint says so.
    from axo_helper import core

    monkeypatch.setattr(core, "installed_integrations", lambda policy: frozenset())
    data = _chats(tmp_path / "chats.jsonl")
    result = cli("plan", *args, "--data", str(data))
    assert result.exit_code == PlanError.exit_code, result.output
    err = result.stderr
    assert "error: nothing fits" in err and "sequence_len 4096" in err
    assert "Traceback" not in result.output
    # The shorter --seq-len is offered only with the rows it would drop.
    assert "longer and dropped" in err and "min_rows_kept 99%" in err
    assert "a GPU with >=" in err
    assert "pip install liger-kernel (fused cross-entropy) makes it fit" in err
    # installed, the same case plans at the full length
    monkeypatch.undo()
    fits = cli("plan", *args, "--data", str(data), "--json")
    assert fits.exit_code == 0, fits.output
    planned = json.loads(fits.stdout)
    assert planned["sequence_len"] == 4096 and planned["fused_cross_entropy"] is True


def test_case_1_lowered_policy_shrinks_and_says_what_is_dropped(tmp_path: Path) -> None:
    from axo_helper import dataset

    data = dataset.inspect(_chats(tmp_path / "chats.jsonl"))
    loose = replace(POLICY, min_rows_kept=0.0)
    p = planner.plan(gpu("t4"), mdl("meta-llama/Llama-3.1-8B"), data, loose)
    assert p.setup.sequence_len == 2048
    fate = p.row_fate
    assert fate is not None and fate.rows_dropped == data.rows and fate.tokens_kept == 0
    assert p.settings is not None and p.settings.excess_length_strategy is not None
    assert p.settings.excess_length_strategy.value == "drop"
    assert f"{data.rows:,} of {data.rows:,} rows" in p.settings.excess_length_strategy.reason
    # Nothing is trained: no steps of training are claimed.
    assert p.tokens_per_epoch == 0
    assert any("longer and dropped" in w for w in p.warnings)
    cfg, why = build_config(p, output_dir="out", dataset_path=str(tmp_path / "chats.jsonl"))
    assert cfg["excess_length_strategy"] == "drop"
    assert "rows" in why["excess_length_strategy"]
    keys = list(cfg)
    assert keys.index("excess_length_strategy") == keys.index("sequence_len") + 1


def test_case_2_completion_rows_are_split_into_chunks() -> None:
    # 290 documents of ~32k tokens on an RTX 4090: before, 19 steps and 1.2M tokens were
    # reported at 4096 (long rows counted as dropped); Axolotl trains ~9.3M tokens.
    data = _completion(290, 32_000)
    p = planner.plan(gpu("rtx4090"), mdl("meta-llama/Llama-3.1-8B"), data, POLICY)
    seq = p.setup.sequence_len
    assert seq < 16_000  # shortened to fit: the rows are split, not dropped
    fate = p.row_fate
    assert fate is not None and fate.handling == "split"
    assert fate.rows_dropped == 0 and fate.rows_split == 290
    assert fate.sequences == sum(math.ceil(v / seq) for v in data.tokens.quantiles)
    assert fate.tokens_kept == data.tokens.total
    assert p.tokens_per_epoch is not None and p.tokens_per_epoch >= 0.95 * data.tokens.total
    assert p.steps_per_epoch == math.ceil(fate.sequences / p.effective_batch)
    # ~4 chunks a row at this length: counting rows alone gave a quarter of the steps.
    assert p.steps_per_epoch is not None
    assert p.steps_per_epoch >= 4 * math.ceil(data.rows / p.effective_batch)
    # Chunks all fit: the key does not apply.
    assert p.settings is not None and p.settings.excess_length_strategy is None


def test_completion_rows_past_64_chunks_are_cut_by_the_tokenizer() -> None:
    fate = row_fate(_completion(10, 20_000), 256)  # 64 x 256 = 16,384 tokens at most
    assert fate.rows_truncated == 10 and fate.tokens_dropped > 0
    assert fate.sequences == 10 * 64


def test_shortest_allowed_keeps_the_policy_share() -> None:
    data = qa_data(p50=1000, p95=3000, p99=3900, mx=4000)
    floor = shortest_allowed(data, POLICY)
    assert floor == 4096  # the 99th percentile row, rounded up to 256
    assert row_fate(data, floor).rows_kept_share >= 0.99
    assert shortest_allowed(data, replace(POLICY, min_rows_kept=0.5)) == 1024
    assert shortest_allowed(_completion(10, 32_000), POLICY) == POLICY.seq_len_min


def test_all_kept_counts_match_the_data() -> None:
    data = qa_data(mx=700)
    fate = row_fate(data, 1024)
    assert (fate.rows_kept, fate.rows_dropped, fate.tokens_kept) == (10_000, 0, data.tokens.total)
    p = planner.plan(gpu("rtx4090"), mdl("meta-llama/Llama-3.1-8B"), data, POLICY)
    assert p.settings is not None and p.settings.excess_length_strategy is None


def test_the_longest_row_is_dropped_even_when_the_sample_missed_it() -> None:
    fate = row_fate(qa_data(p99=600, mx=5000), 1024)
    assert fate.rows_dropped >= 1 and fate.tokens_dropped >= 5000


@pytest.mark.parametrize("bad", [1.5, -0.1, "most", None])
def test_min_rows_kept_is_validated(bad: object) -> None:
    from axo_helper.resources import load_preset

    raw = copy.deepcopy(load_preset("policy.yaml"))  # the loader caches what it returns
    raw["sequence_len"]["min_rows_kept"] = bad
    with pytest.raises(AxoHelperError, match=r"sequence_len\.min_rows_kept"):
        planner.parse_policy(raw)
    del raw["sequence_len"]["min_rows_kept"]
    with pytest.raises(AxoHelperError, match=r"sequence_len\.min_rows_kept: is missing"):
        planner.parse_policy(raw)


def test_plan_output_says_what_the_length_does_to_the_rows(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    rnd = random.Random(1)
    path.write_text(
        "".join(json.dumps({"text": _text(rnd.randint(31_000, 33_000))}) + "\n" for _ in range(40))
    )
    args = ("plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--data", str(path))
    text = cli(*args)
    assert text.exit_code == 0, text.output
    as_json = json.loads(cli(*args, "--json").stdout)
    seq = as_json["sequence_len"]
    assert seq < 32_000  # 32k-token rows are split, not trained whole
    assert f"rows: 40 rows -> {as_json['rows']['sequences']} sequences at sequence_len {seq:,}" in (
        text.stdout
    )
    rows = as_json["rows"]
    assert rows["handling"] == "split" and rows["rows"] == 40 and rows["rows_dropped"] == 0
    assert rows["sequences"] >= rows["tokens"] // seq
    assert rows["tokens_kept"] == rows["tokens"]
