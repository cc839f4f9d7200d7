"""The base and the fine-tuned model on the held-out rows: loss, perplexity, answers.

One model is in memory at a time: the base is loaded, scored and freed before the
fine-tuned model is. On a GPU every held-out row is scored; on CPU at most
models.CPU_MAX_ROWS (or --max-rows), and models over models.CPU_MAX_PARAMS are refused.
"""

from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from axo_helper.config.read import DEFAULT_SEQUENCE_LEN, configured_eot, lax_int
from axo_helper.report.heldout import HeldOut, eval_data_split, held_out_split, prompt_and_reference
from axo_helper.report.missing import Missing
from axo_helper.report.models import (
    CPU_MAX_ROWS,
    Models,
    device_and_dtype,
    find_models,
    load_model,
    load_tokenizer,
    refuse_on_cpu,
)
from axo_helper.rundir import RunDir

PROMPT_CHARS = 600  # a long prompt is shown by its end, where the question is


@dataclass(frozen=True)
class EvalOptions:
    eval_data: Path | None = None  # --eval-data FILE instead of the val_set_size split
    max_rows: int | None = None  # held-out rows to score (default: all; CPU_MAX_ROWS on CPU)
    samples: int = 4  # prompts in the answer table
    max_new_tokens: int = 64  # the answers' length cap
    progress: bool = True  # progress bars on stderr


def evaluate_run(
    run: RunDir, cfg: Mapping[str, Any], options: EvalOptions
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(`evaluation` object, `samples` list) of `report --json`; Missing becomes a reason."""
    started = time.monotonic()
    try:
        models = find_models(run, cfg)
        try:
            cuda, dtype = device_and_dtype()
        except ImportError as exc:
            raise Missing(
                "scoring the models needs torch and transformers, which are not installed: "
                'pip install "axo-helper[train]"'
            ) from exc
        refuse_on_cpu(models, cuda)
        with tempfile.TemporaryDirectory(prefix="axo-report-") as work:
            split = (
                eval_data_split(run, cfg, options.eval_data, Path(work))
                if options.eval_data is not None
                else held_out_split(run, cfg)
            )
            evaluation, samples = _score(cfg, split, models, options, cuda=cuda, dtype=dtype)
    except Missing as gap:
        return {"status": "missing", "reason": gap.reason}, []
    evaluation["seconds"] = round(time.monotonic() - started, 1)
    return evaluation, samples


def _rows(split: HeldOut, options: EvalOptions, cuda: bool) -> int:
    if options.max_rows is not None:
        return min(split.rows, options.max_rows)
    return split.rows if cuda else min(split.rows, CPU_MAX_ROWS)


@dataclass(frozen=True)
class _Setup:
    """What both models are scored with: the fine-tune's tokenizer and the batches."""

    tokenizer: Any
    pad_id: int
    stop: list[int]
    rows: int
    size: int
    prompts: list[tuple[list[int], list[int]]]


def _score(
    cfg: Mapping[str, Any],
    split: HeldOut,
    models: Models,
    options: EvalOptions,
    *,
    cuda: bool,
    dtype: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from axo_helper.launch import captured_output
    from axo_helper.report.scoring import batch_rows

    if split.rows == 0:
        raise Missing(f"the held-out split is empty ({split.description})")
    with captured_output():
        tokenizer = load_tokenizer(models)
    pad_id = tokenizer.pad_token_id
    setup = _Setup(
        tokenizer=tokenizer,
        pad_id=(pad_id if pad_id is not None else tokenizer.eos_token_id) or 0,
        stop=_stop_ids(tokenizer, cfg),
        rows=_rows(split, options, cuda),
        size=batch_rows(
            lax_int(cfg.get("sequence_len")) or DEFAULT_SEQUENCE_LEN, len(tokenizer), cuda=cuda
        ),
        prompts=_prompts(split.dataset, options.samples),
    )
    base = _score_one(models, "base", split, setup, options, cuda=cuda, dtype=dtype)
    tuned = _score_one(models, "tuned", split, setup, options, cuda=cuda, dtype=dtype)
    evaluation = {
        "status": "ok",
        "reason": None,
        "split": {
            "source": split.source,
            "description": split.description,
            "rows": split.rows,
            "rows_scored": setup.rows,
            "tokens_scored": tuned["tokens"],
            "prepared_dataset": str(split.prepared) if split.prepared else None,
        },
        "device": "cuda" if cuda else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "batch_rows": setup.size,
        "base": {"model": models.base, **_figures(base)},
        "fine_tuned": {"model": models.describe_tuned(), **_figures(tuned)},
        "loss_change": _round(tuned["loss"] - base["loss"]),
        "notes": base["notes"] + tuned["notes"],
    }
    samples = [
        {
            "prompt": _shown_prompt(tokenizer.decode(prompt)),
            "reference": tokenizer.decode(reference, skip_special_tokens=True).strip(),
            "base": base["answers"][i],
            "fine_tuned": tuned["answers"][i],
        }
        for i, (prompt, reference) in enumerate(setup.prompts)
    ]
    return evaluation, samples


def _score_one(
    models: Models,
    which: str,
    split: HeldOut,
    setup: _Setup,
    options: EvalOptions,
    *,
    cuda: bool,
    dtype: Any,
) -> dict[str, Any]:
    """Load one model, score it, answer the prompts, free it: loss, tokens, answers, notes."""
    from axo_helper.launch import captured_output
    from axo_helper.report.scoring import greedy_answers, held_out_loss

    with captured_output():
        lm, notes = load_model(models, which, cuda=cuda, dtype=dtype, vocab=len(setup.tokenizer))
    loss, tokens = held_out_loss(
        lm,
        split.dataset,
        rows=setup.rows,
        size=setup.size,
        pad_id=setup.pad_id,
        label="base" if which == "base" else "fine-tuned",
        progress=options.progress,
    )
    generated = greedy_answers(
        lm,
        [prompt for prompt, _ in setup.prompts],
        max_new_tokens=options.max_new_tokens,
        stop=setup.stop,
        pad_id=setup.pad_id,
    )
    del lm
    _free(cuda)
    decode = setup.tokenizer.decode
    return {
        "loss": loss,
        "tokens": tokens,
        "answers": [decode(a, skip_special_tokens=True).strip() for a in generated],
        "notes": notes,
    }


def _figures(score: Mapping[str, Any]) -> dict[str, float | None]:
    return {"loss": _round(score["loss"]), "perplexity": _perplexity(score["loss"])}


def _prompts(dataset: Any, count: int) -> list[tuple[list[int], list[int]]]:
    """The first `count` held-out rows that have a prompt and a trained answer."""
    found: list[tuple[list[int], list[int]]] = []
    for row in dataset:
        pair = prompt_and_reference(row["input_ids"], row["labels"])
        if pair is not None:
            found.append(pair)
        if len(found) >= count:
            break
    return found


def _stop_ids(tokenizer: Any, cfg: Mapping[str, Any]) -> list[int]:
    """The eos token and the config's turn terminators: where an answer ends."""
    stop = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in configured_eot(cfg):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            stop.append(token_id)
    return sorted(set(stop))


def _shown_prompt(text: str) -> str:
    return text if len(text) <= PROMPT_CHARS else "…" + text[-PROMPT_CHARS:]


def _round(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _perplexity(loss: float) -> float | None:
    # exp overflows past ~709; a perplexity that large says only "no idea" anyway.
    return round(math.exp(loss), 3) if math.isfinite(loss) and loss < 700 else None


def _free(cuda: bool) -> None:
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()
