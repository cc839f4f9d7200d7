"""Dataset inspection: which Axolotl dataset type a file holds, how many rows, how long they are.

`inspect(path)` streams a .jsonl/.json/.parquet/.csv/.txt file, or a directory of them, once:
every row is parsed and classified (a malformed line, a binary file or a second format
half-way through is reported with its file and line), rows are counted exactly, and a
seeded reservoir sample (at most `max_token_rows` rows) is tokenized with the model's fast
tokenizer when one is given, else estimated from characters and flagged approximate.

Plan path: no torch, transformers or Axolotl import here. `tokenizers` and `pyarrow` are
imported lazily, only when a tokenizer.json or a Parquet file is actually read.
See docs/dataset.md for the accepted formats and how they map to Axolotl's `datasets:`.

    spec.py           inspect(): the order of the steps, the DataSpec
    files.py          which files of a path Axolotl trains on (splits, one builder)
    shapes.py         row formats: key names, classification of a row's keys
    scan.py           the pass over all rows: agreement, counts, reservoir sample, warnings
    problems.py       binary/UTF-8 sniff, row locations, malformed-JSON errors
    json_files.py     .jsonl and .json (JSON Lines, or an array streamed in chunks)
    text_files.py     .csv and .txt
    parquet_files.py  .parquet (pyarrow, lazily)
    prompts.py        what Axolotl's prompt formats add: alpaca prompt, special tokens
    tokens.py         token counts: tokenizer.json or the approximation; statistics
    entry.py          the Axolotl field mapping and `datasets:` entry
"""

from axo_helper.dataset.entry import axolotl_dataset_entry
from axo_helper.dataset.prompts import (
    ALPACA_NO_INPUT_PREAMBLE,
    ALPACA_PREAMBLE,
    CHAT_TOKENS_PER_MESSAGE,
    SPECIAL_TOKENS_PER_ROW,
)
from axo_helper.dataset.spec import inspect
from axo_helper.dataset.tokens import (
    CHARS_PER_TOKEN,
    CJK_TOKENS_PER_CHAR,
    NON_ASCII_TOKENS_PER_CHAR,
    approx_tokens,
)

__all__ = [
    "ALPACA_NO_INPUT_PREAMBLE",
    "ALPACA_PREAMBLE",
    "CHARS_PER_TOKEN",
    "CHAT_TOKENS_PER_MESSAGE",
    "CJK_TOKENS_PER_CHAR",
    "NON_ASCII_TOKENS_PER_CHAR",
    "SPECIAL_TOKENS_PER_ROW",
    "approx_tokens",
    "axolotl_dataset_entry",
    "inspect",
]
