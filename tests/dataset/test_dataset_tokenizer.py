"""dataset token counts with a real tokenizer.json; the plan path imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dataset_rows import (
    ALPACA,
    ALPACA_IN,
    OPENAI,
    SENTENCES,
    error,
    n_tokens,
    write_jsonl,
)

from axo_helper.dataset import (
    ALPACA_PREAMBLE,
    CHAT_TOKENS_PER_MESSAGE,
    SPECIAL_TOKENS_PER_ROW,
    inspect,
)


def test_tokenizer_counts_completion(tmp_path: Path, tiny_tokenizer: Path) -> None:
    texts = [s * (i + 1) for i, s in enumerate(SENTENCES)]
    p = write_jsonl(tmp_path / "t.jsonl", [{"text": t} for t in texts])
    for tok in (tiny_tokenizer, tiny_tokenizer / "tokenizer.json"):
        spec = inspect(p, tokenizer=tok)
        assert spec.approximate is False
        assert spec.tokenizer == str(tiny_tokenizer / "tokenizer.json")
        expected = sorted(n_tokens(tiny_tokenizer, t) + 2 for t in texts)
        assert spec.tokens.total == sum(expected)
        assert spec.tokens.max == expected[-1] and spec.tokens.p50 == expected[2]
        assert expected[-1] > 8  # longer than the tokenizer.json truncation


def test_tokenizer_counts_chat_and_alpaca(tmp_path: Path, tiny_tokenizer: Path) -> None:
    chat = inspect(write_jsonl(tmp_path / "c.jsonl", [OPENAI]), tokenizer=tiny_tokenizer)
    msgs = OPENAI["messages"]
    assert chat.tokens.max == (
        sum(n_tokens(tiny_tokenizer, m["content"]) for m in msgs)
        + CHAT_TOKENS_PER_MESSAGE * len(msgs)
        + SPECIAL_TOKENS_PER_ROW["chat_template"]
    )
    alp = inspect(write_jsonl(tmp_path / "a.jsonl", [ALPACA_IN]), tokenizer=tiny_tokenizer)
    prompt = (
        ALPACA_PREAMBLE
        + "\n\n### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:\n"
    )
    assert (
        alp.tokens.max == n_tokens(tiny_tokenizer, prompt) + n_tokens(tiny_tokenizer, "Hello") + 2
    )


def test_tokenizer_dir_without_tokenizer_json_falls_back(tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [ALPACA]), tokenizer=tmp_path / "tok")
    assert spec.approximate is True and spec.tokenizer is None
    assert any("no tokenizer.json" in w for w in spec.warnings)


def test_missing_tokenizer_path_is_a_usage_error(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    assert error(p, tokenizer=tmp_path / "nope").exit_code == 2


def test_plan_path_imports_no_torch_or_axolotl(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    code = (
        "import sys; from axo_helper.dataset import inspect; "
        f"inspect({str(p)!r}); "
        "print(sorted(m for m in ('torch', 'transformers', 'axolotl', 'pyarrow', 'tokenizers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
