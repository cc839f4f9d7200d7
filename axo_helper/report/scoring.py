"""Held-out loss and greedy answers of one loaded model (torch; imported by evaluation.py
inside its functions only).

The loss is the mean cross-entropy over every token the training was scored on
(labels != -100), each token weighted alike across the whole split; perplexity is its
exponential. The Trainer's eval_loss averages per batch instead, so it can differ a
little; both models here are scored the same way on the same tokens.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from axo_helper.report.heldout import IGNORE_INDEX

# Bytes of logits one batch may hold (its fp32 copy included): batches are sized so
# that a 150k-token vocabulary at 2,048 tokens still fits beside the model.
LOGITS_BUDGET_GPU = 2 * 1024**3
LOGITS_BUDGET_CPU = 512 * 1024**2
MAX_BATCH_ROWS = 64


def batch_rows(sequence_len: int, vocab: int, *, cuda: bool) -> int:
    """Rows per batch so that the batch's logits (model dtype + fp32) stay in budget."""
    budget = LOGITS_BUDGET_GPU if cuda else LOGITS_BUDGET_CPU
    per_row = max(1, sequence_len) * max(1, vocab) * 6
    return max(1, min(MAX_BATCH_ROWS, budget // per_row))


def _batches(
    dataset: Any, rows: int, size: int
) -> Iterator[tuple[list[list[int]], list[list[int]]]]:
    taken = 0
    for batch in dataset.iter(batch_size=size):
        ids, labels = batch["input_ids"], batch["labels"]
        keep = min(len(ids), rows - taken)
        taken += keep
        yield ids[:keep], labels[:keep]
        if taken >= rows:
            return


def _padded(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def held_out_loss(
    model: Any, dataset: Any, *, rows: int, size: int, pad_id: int, label: str, progress: bool
) -> tuple[float, int]:
    """(mean loss per trained token, trained tokens) over the first `rows` rows."""
    from tqdm import tqdm

    device = model.get_input_embeddings().weight.device
    total, tokens = 0.0, 0
    with (
        torch.no_grad(),
        tqdm(
            total=rows,
            desc=f"held-out loss ({label})",
            unit="row",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        for ids, labels in _batches(dataset, rows, size):
            input_ids = _padded(ids, pad_id).to(device)
            mask = _padded([[1] * len(s) for s in ids], 0).to(device)
            target = _padded(labels, IGNORE_INDEX).to(device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            # Token t predicts token t+1, as the training loss shifts them.
            shifted = logits[:, :-1, :].float().reshape(-1, logits.shape[-1])
            wanted = target[:, 1:].reshape(-1).to(shifted.device)
            total += float(
                torch.nn.functional.cross_entropy(
                    shifted, wanted, ignore_index=IGNORE_INDEX, reduction="sum"
                )
            )
            tokens += int((wanted != IGNORE_INDEX).sum())
            bar.update(len(ids))
    return (total / tokens if tokens else math.nan), tokens


def greedy_answers(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop: list[int],
    pad_id: int,
) -> list[list[int]]:
    """The greedy continuation of each prompt (token ids), at most max_new_tokens long,
    cut before its first stop token. One batch, padded on the left as generation needs."""
    if not prompts:
        return []
    device = model.get_input_embeddings().weight.device
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stop or None,
            pad_token_id=pad_id,
        )
    answers = []
    for row in out[:, width:].tolist():
        end = next((i for i, t in enumerate(row) if t in stop), len(row))
        answers.append([int(t) for t in row[:end]])
    return answers
