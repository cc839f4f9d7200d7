"""What Axolotl 0.19 does with each row at a sequence_len, and the shortest length policy allows.

Axolotl (utils/data/utils.handle_long_seq_in_dataset) drops every tokenized row longer than
sequence_len unless `excess_length_strategy: truncate`; alpaca, chat_template and
input_output rows are tokenized whole, so a long row is dropped. Completion rows are cut by
the tokenizer at 64 x sequence_len and then split into sequence_len chunks
(prompt_strategies/completion.py): nothing is dropped, but one row trains as several
sequences. Counted from the DataSpec's token-length sample and scaled to all rows.
"""

from __future__ import annotations

import math
from itertools import pairwise

from axo_helper.planner.policy import Policy
from axo_helper.specs import DataSpec, RowFate, TokenStats

# prompt_strategies/completion.load: max_length=cfg.sequence_len * 64.
COMPLETION_MAX_CHUNKS = 64
# Points of the length curve drawn from the percentiles when the sample is not recorded.
_CURVE_POINTS = 200


def sample_lengths(tokens: TokenStats) -> list[float]:
    """Evenly ranked row lengths: the recorded sample, else a curve through the percentiles.

    The curve (hand-built specs, older plan.json) is flat at p50 below the median and
    linear between p50, p95, p99 and max: the tail, which decides what is dropped, is kept.
    """
    if tokens.quantiles:
        return sorted(float(v) for v in tokens.quantiles)
    knots: list[tuple[float, float]] = [
        (0.0, tokens.p50),
        (0.5, tokens.p50),
        (0.95, tokens.p95),
        (0.99, tokens.p99),
        (1.0, tokens.max),
    ]
    out: list[float] = []
    for i in range(_CURVE_POINTS):
        q = (i + 0.5) / _CURVE_POINTS
        for (q0, v0), (q1, v1) in pairwise(knots):
            if q <= q1:
                out.append(v0 + (v1 - v0) * (q - q0) / (q1 - q0))
                break
    return out


def row_fate(data: DataSpec, seq: int) -> RowFate:
    """Rows and tokens kept, dropped or split at `seq` (see the module docstring)."""
    points = sample_lengths(data.tokens)
    if data.type == "completion":
        return _split(data, seq, points)
    return _dropped(data, seq, points)


def _weighted_p95(lengths: list[tuple[float, float]]) -> int:
    """95th percentile of (length, weight) pairs."""
    ordered = sorted(lengths)
    total = sum(w for _, w in ordered)
    seen = 0.0
    for value, weight in ordered:
        seen += weight
        if seen >= 0.95 * total:
            return math.ceil(value)
    return math.ceil(ordered[-1][0]) if ordered else 0


def _dropped(data: DataSpec, seq: int, points: list[float]) -> RowFate:
    n, sample_tokens = len(points), sum(points) or 1.0
    kept = [v for v in points if v <= seq]
    rows_dropped = round(data.rows * (n - len(kept)) / n)
    tokens_kept = round(data.tokens.total * sum(kept) / sample_tokens)
    if len(kept) == n:
        # Every sampled row fits: the recorded mean and p95 are exact, the curve is not.
        # The longest row is measured even when the sample missed it.
        mean, p95 = data.tokens.mean, min(seq, data.tokens.p95)
        over = data.tokens.max > seq
        rows_dropped = int(over)
        tokens_kept = data.tokens.total - (data.tokens.max if over else 0)
    else:
        mean = sum(kept) / len(kept) if kept else 0.0
        p95 = _weighted_p95([(v, 1.0) for v in kept])
    rows_kept = data.rows - rows_dropped
    return RowFate(
        sequence_len=seq,
        handling="drop",
        rows=data.rows,
        rows_kept=rows_kept,
        rows_dropped=rows_dropped,
        rows_truncated=0,
        rows_split=0,
        sequences=rows_kept,
        tokens=data.tokens.total,
        tokens_kept=tokens_kept,
        tokens_dropped=data.tokens.total - tokens_kept,
        mean_len=mean,
        p95_len=p95,
    )


def _split(data: DataSpec, seq: int, points: list[float]) -> RowFate:
    n, sample_tokens = len(points), sum(points) or 1.0
    cap = COMPLETION_MAX_CHUNKS * seq
    chunks: list[tuple[float, float]] = []  # (chunk length, chunks of it per sample row)
    trained = 0.0
    split = truncated = 0
    for length in points:
        cut = min(length, float(cap))
        trained += cut
        full, rest = divmod(cut, seq)
        if full:
            chunks.append((float(seq), full))
        if rest > 0:
            chunks.append((rest, 1.0))
        split += length > seq
        truncated += length > cap
    per_row = sum(w for _, w in chunks) / n
    tokens_kept = round(data.tokens.total * trained / sample_tokens)
    sequences = max(data.rows, round(data.rows * per_row))
    return RowFate(
        sequence_len=seq,
        handling="split",
        rows=data.rows,
        rows_kept=data.rows - round(data.rows * split / n),
        rows_dropped=0,
        rows_truncated=round(data.rows * truncated / n),
        rows_split=round(data.rows * (split - truncated) / n),
        sequences=sequences,
        tokens=data.tokens.total,
        tokens_kept=tokens_kept,
        tokens_dropped=data.tokens.total - tokens_kept,
        mean_len=tokens_kept / sequences if sequences else 0.0,
        p95_len=_weighted_p95(chunks),
    )


def shortest_allowed(data: DataSpec | None, policy: Policy) -> int:
    """The shortest sequence_len that keeps policy.min_rows_kept of the rows.

    Completion rows are split, never dropped, so any length keeps them all: the
    policy's minimum. Rounded up to the policy's multiple, like the data's p99.
    """
    floor = policy.seq_len_min
    if data is None or data.type == "completion" or policy.min_rows_kept <= 0:
        return floor
    points = sample_lengths(data.tokens)
    rank = max(1, math.ceil(policy.min_rows_kept * len(points) - 1e-9))
    need = math.ceil(points[rank - 1])
    multiple = policy.seq_len_multiple
    return max(floor, math.ceil(need / multiple) * multiple)


def describe(fate: RowFate) -> str:
    """One line: what the chosen length does to the rows (plan output, warnings)."""
    seq = f"sequence_len {fate.sequence_len:,}"
    tok = f"{_share(fate.tokens_kept, fate.tokens)} of {fate.tokens:,} tokens trained"
    if fate.handling == "split":
        text = f"{fate.rows:,} rows -> {fate.sequences:,} sequences at {seq}"
        if fate.rows_split or fate.rows_truncated:
            text += f" ({fate.rows_split + fate.rows_truncated:,} rows split into chunks"
            if fate.rows_truncated:
                text += f", {fate.rows_truncated:,} cut at {COMPLETION_MAX_CHUNKS} chunks"
            text += ")"
        return f"{text}; {tok}"
    lost = fate.rows_dropped + fate.rows_truncated
    verb = "truncated" if fate.handling == "truncate" else "dropped"
    return (
        f"{fate.rows_kept:,} of {fate.rows:,} rows kept at {seq}, {lost:,} "
        f"({_share(lost, fate.rows)}) longer and {verb}; {tok}"
    )


def _share(part: int, whole: int) -> str:
    if whole <= 0:
        return "0%"
    pct = 100.0 * part / whole
    return f"{pct:.1f}%" if 0 < pct < 99.95 and pct != round(pct) else f"{pct:.0f}%"
