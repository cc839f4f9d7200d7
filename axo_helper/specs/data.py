"""DataSpec: what the dataset holds, by type and token lengths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from axo_helper.specs.base import DatasetType


@dataclass(frozen=True)
class TokenStats:
    p50: int
    p95: int
    p99: int
    max: int
    mean: float
    total: int  # estimated tokens in the whole dataset
    # The sampled lengths, sorted, thinned to at most dataset.tokens.QUANTILES evenly ranked
    # values (each stands for the same share of rows): what the planner reads to count the
    # rows a sequence_len keeps, drops or splits. () when unknown (hand-built specs).
    quantiles: tuple[int, ...] = ()


@dataclass(frozen=True)
class DataSpec:
    """What a dataset is and how long its samples are."""

    path: str
    files: tuple[str, ...]
    type: DatasetType
    # Axolotl field mapping for the type, e.g. {"field_messages": "conversations",
    # "message_property_mappings": {"role": "from", "content": "value"}} for ShareGPT keys.
    fields: dict[str, Any]
    rows: int
    sampled_rows: int  # rows whose tokens were counted
    tokens: TokenStats
    tokenizer: str | None  # the tokenizer used; None when approximated
    approximate: bool  # True: chars-per-token approximation (see docs/dataset.md)
    keys: tuple[str, ...] = ()  # top-level keys of the rows
    file_format: Literal["jsonl", "json", "parquet", "csv", "txt", "mixed"] = "jsonl"
    warnings: tuple[str, ...] = ()
    # chat_template only: the distinct message roles seen (values of the role/from key).
    roles: tuple[str, ...] = ()
