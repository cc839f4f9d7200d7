"""Rows and helpers shared by the tests of axo_helper.dataset (tests/dataset/)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from axo_helper.dataset import inspect
from axo_helper.errors import DatasetError

ALPACA = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
ALPACA_IN = {"instruction": "Translate.", "input": "Bonjour", "output": "Hello"}
OPENAI = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
    ]
}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "What is 2+2?"},
        {"from": "gpt", "value": "4"},
    ]
}
IO = {"segments": [{"text": "Q: hi\n", "label": False}, {"text": "A: hello", "label": True}]}


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def varied_rows(n: int) -> list[dict[str, str]]:
    # Output lengths vary with i so percentiles and samples differ between seeds.
    return [
        {"instruction": f"Question {i}?", "input": "", "output": "word " * (1 + (i * 7919) % 97)}
        for i in range(n)
    ]


def error(path: Path | str, **kw: Any) -> DatasetError:
    with pytest.raises(DatasetError) as exc:
        inspect(path, **kw)
    return exc.value


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Below is an instruction that describes a task.",
    "### Instruction:\n### Input:\n### Response:\n",
    "Brindlemoor is a small town in a high valley between two grey mountains.",
    "What is two plus two? Four. Hello there, how are you today?",
]


def n_tokens(tok_dir: Path, text: str) -> int:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    tok.no_truncation()
    return len(tok.encode(text, add_special_tokens=False).ids)
