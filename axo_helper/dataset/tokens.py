"""Counting tokens: with the model's fast tokenizer (tokenizer.json), or estimated.

Owns the characters-per-token approximation, loading tokenizer.json through the Rust
`tokenizers` library (imported only when one is given), batched encoding of the sample,
and the length statistics (nearest-rank percentiles, total scaled to all rows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from axo_helper.dataset.prompts import Segments
from axo_helper.errors import DatasetPathError
from axo_helper.specs import TokenStats

# Without the model's tokenizer, tokens are estimated from characters. The usual rule of
# thumb for English with GPT-style BPE vocabularies (cl100k, Llama 3's 128k) is about 4
# characters per token (OpenAI, "What are tokens and how to count them"); 32k-vocabulary
# SentencePiece tokenizers (Llama 2, Mistral) split finer. 3.6 sits below both on purpose:
# an overestimate plans a longer sequence (safe), an underestimate truncates or OOMs.
CHARS_PER_TOKEN = 3.6
# CJK ideographs, kana and Hangul are mostly one token each or more in these vocabularies;
# other non-ASCII letters (accents, Cyrillic, Greek) are split about every two characters.
CJK_TOKENS_PER_CHAR = 1.0
NON_ASCII_TOKENS_PER_CHAR = 0.5
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")

_TOKENIZE_BATCH = 2048
# Sampled lengths kept in TokenStats.quantiles: each stands for 0.1% of the rows, fine
# enough for a 99% policy on rows kept, and small enough for plan.json.
QUANTILES = 1000


def approx_tokens(text: str) -> float:
    """Estimated tokens in `text` without a tokenizer (see CHARS_PER_TOKEN)."""
    if text.isascii():
        return len(text) / CHARS_PER_TOKEN
    ascii_chars = len(text.encode("ascii", "ignore"))
    cjk = len(_CJK.findall(text))
    other = len(text) - ascii_chars - cjk
    return (
        ascii_chars / CHARS_PER_TOKEN
        + cjk * CJK_TOKENS_PER_CHAR
        + other * NON_ASCII_TOKENS_PER_CHAR
    )


class TokenCounter:
    """Counts tokens of many rows: with a tokenizers.Tokenizer, or approximately."""

    def __init__(self, tokenizer: Any | None):
        self.tokenizer = tokenizer
        self.exact = tokenizer is not None

    def __call__(self, rows: list[Segments]) -> list[int]:
        if self.tokenizer is None:
            return [
                math.ceil(sum(approx_tokens(t) for t in texts)) + extra for texts, extra in rows
            ]
        counts = [extra for _, extra in rows]
        flat: Iterator[tuple[int, str]] = (
            (i, t) for i, (texts, _) in enumerate(rows) for t in texts
        )
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        while True:
            chunk = [pair for _, pair in zip(range(_TOKENIZE_BATCH), flat, strict=False)]
            if not chunk:
                return counts
            encodings = encode([t for _, t in chunk], add_special_tokens=False)
            for (i, _), enc in zip(chunk, encodings, strict=True):
                counts[i] += len(enc.ids)


def tokenizer_file(tokenizer: str | Path, warnings: list[str]) -> Path | None:
    """The tokenizer.json that `tokenizer` names; None (with a warning) if there is none."""
    p = Path(tokenizer).expanduser()
    if not p.exists():
        raise DatasetPathError(
            f"tokenizer path {p} does not exist",
            hint="pass a directory containing tokenizer.json, or the tokenizer.json file",
        )
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        warnings.append(
            f"no tokenizer.json in {p} (only fast tokenizers are read); token counts are "
            f"estimated at {CHARS_PER_TOKEN} characters per token"
        )
        return None
    return file


def token_counter(file: Path | None, warnings: list[str]) -> TokenCounter:
    """A counter over `file`'s tokenizer, or the approximation when it cannot be read."""
    if file is None:
        return TokenCounter(None)
    try:
        from tokenizers import Tokenizer
    except ImportError:
        warnings.append("the `tokenizers` library is not installed; token counts are estimated")
        return TokenCounter(None)
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # a Rust-side parse error: report it, plan on the estimate
        warnings.append(f"could not read {file} ({e}); token counts are estimated")
        return TokenCounter(None)
    # tokenizer.json may carry truncation/padding settings that would distort lengths.
    tok.no_truncation()
    tok.no_padding()
    return TokenCounter(tok)


def _percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile: the smallest value with at least p% of values <= it."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def thinned(sorted_values: list[int], k: int = QUANTILES) -> tuple[int, ...]:
    """At most k evenly ranked values of a sorted list (all of them when it is short)."""
    n = len(sorted_values)
    if n <= k:
        return tuple(sorted_values)
    # The midpoint of each of k equal-rank slices: unbiased for the share below a length.
    return tuple(sorted_values[min(n - 1, int((i + 0.5) * n / k))] for i in range(k))


def token_stats(lengths: list[int], *, rows: int, longest: int) -> TokenStats:
    """Statistics of the sampled lengths; `max` also covers `longest`, the longest row."""
    values = sorted(lengths)
    total_sample = sum(values)
    mean = total_sample / len(values)
    exact = len(values) == rows
    return TokenStats(
        p50=_percentile(values, 50),
        p95=_percentile(values, 95),
        p99=_percentile(values, 99),
        max=max(values[-1], longest),
        mean=mean,
        total=total_sample if exact else round(mean * rows),
        quantiles=thinned(values),
    )
