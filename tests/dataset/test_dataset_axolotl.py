"""dataset entries and token counts against Axolotl and Hugging Face datasets themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataset_rows import (
    ALPACA,
    ALPACA_IN,
    IO,
    SENTENCES,
    SHAREGPT,
    write_jsonl,
)

from axo_helper.dataset import (
    axolotl_dataset_entry,
    inspect,
)


@pytest.mark.axolotl
def test_entries_and_token_counts_match_axolotl(tmp_path: Path, tiny_tokenizer: Path) -> None:
    """Axolotl accepts the entries, and tokenizes each row to exactly the counted length."""
    pytest.importorskip("axolotl")
    from axolotl.prompt_strategies import load
    from axolotl.prompt_strategies.user_defined import UserDefinedDatasetConfig
    from axolotl.prompt_tokenizers import AlpacaPromptTokenizingStrategy
    from axolotl.prompters import AlpacaPrompter
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.schemas.datasets import SFTDataset
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_file=str(tiny_tokenizer / "tokenizer.json"), bos_token="<s>", eos_token="</s>"
    )
    hf.backend_tokenizer.no_truncation()
    cfg = DictDefault({"train_on_inputs": False, "sequence_len": 100_000})

    def check(name: str, row: dict[str, Any], axolotl_len: Any) -> None:
        spec = inspect(write_jsonl(tmp_path / f"{name}.jsonl", [row]), tokenizer=tiny_tokenizer)
        entry = axolotl_dataset_entry(spec)
        SFTDataset.model_validate(entry)  # Axolotl's own schema for a `datasets:` entry
        assert spec.tokens.max == axolotl_len(spec), name

    def alpaca_len(spec: Any) -> int:
        strat = AlpacaPromptTokenizingStrategy(AlpacaPrompter(None), hf, False, 100_000)
        return len(strat.tokenize_prompt(ALPACA_IN)["input_ids"])

    check("alpaca", ALPACA_IN, alpaca_len)

    qa = {"question": "Why is the sky blue?", "context": "Light scatters.", "answer": "Rayleigh."}

    def user_defined_len(spec: Any) -> int:
        UserDefinedDatasetConfig(**spec.fields)  # every key is one Axolotl knows
        strat = load("user_defined", hf, cfg, spec.fields)
        return len(strat.tokenize_prompt(qa)["input_ids"])

    check("qa", qa, user_defined_len)

    sys_row = {**ALPACA, "system": "You are terse."}

    def system_len(spec: Any) -> int:
        strat = load("user_defined", hf, cfg, spec.fields)
        return len(strat.tokenize_prompt(sys_row)["input_ids"])

    check("system", sys_row, system_len)

    text = {"text": " ".join(SENTENCES)}

    def completion_len(spec: Any) -> int:
        strat = load("completion", hf, cfg, {"field": "text"})
        return len(strat.tokenize_prompt({"text": [text["text"]]})["input_ids"][0])

    check("completion", text, completion_len)

    def io_len(spec: Any) -> int:
        strat = load("input_output", hf, cfg, {})
        return len(strat.tokenize_prompt(IO)["input_ids"])

    check("io", IO, io_len)

    chat = inspect(write_jsonl(tmp_path / "chat.jsonl", [SHAREGPT]))
    SFTDataset.model_validate(axolotl_dataset_entry(chat))


@pytest.mark.axolotl
@pytest.mark.parametrize(
    "layout",
    [
        {"train.jsonl": 4, "qa_test.jsonl": 2, "extra.jsonl": 3, "interval.jsonl": 1},
        {"train/part-0.jsonl": 3, "validation/part-0.jsonl": 2, "notes.jsonl": 5},
        {"a.jsonl": 2, "sub/b.jsonl": 3, ".hidden.jsonl": 7},
        {"a.jsonl": 3, "b.json": 3, "c.csv": 2, "d.csv": 4},
        {"a.csv": 3, "b.parquet": 2, "c.jsonl": 1, "d.parquet": 4},
    ],
)
def test_directory_rows_match_hugging_face_train_split(
    tmp_path: Path, layout: dict[str, int]
) -> None:
    """The rows counted are the rows of the split Axolotl loads: load_dataset(dir)["train"]."""
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "data"
    for name, n in layout.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".csv"):
            (data / name).write_text("instruction,output\n" + "a,b\n" * n, encoding="utf-8")
        elif name.endswith(".parquet"):
            pa = pytest.importorskip("pyarrow")
            pq = pytest.importorskip("pyarrow.parquet")
            pq.write_table(pa.Table.from_pylist([ALPACA] * n), data / name)
        else:
            write_jsonl(data / name, [ALPACA] * n)
    train = datasets.load_dataset(str(data), cache_dir=str(tmp_path / "cache"))["train"]
    assert inspect(data).rows == len(train)
