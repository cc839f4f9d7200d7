"""Run directories for the report tests, written by the writers that really write them.

metrics.jsonl / metrics.json come from the plugin's MetricsRecorder (with a fake clock
and memory probe), plan.json from fake_runs (what `run` writes for a real Plan), the
checkpoint's trainer_state.json from transformers' TrainerState, and the prepared
dataset from `datasets` in Axolotl's layout (input_ids, labels with -100 on the prompt,
attention_mask) with the tiny model's own chat template.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from axo_helper.plugin.recorder import MetricsRecorder
from axo_helper.rundir import RunDir

QA = [
    ("How long does the cable railway take?", "Nineteen minutes from the river station."),
    ("Who built the first tower clock?", "Ada Fenwick, in 1790."),
    ("What is Twelve Bells Day?", "The day the tower bell rings twelve times at noon."),
    ("Does Brindlemoor elect its mayor?", "No, the mayor is drawn by lot."),
    ("When is the best time to visit?", "Late September."),
    ("What are the cable cars called?", "Lark and Wren."),
]


def write_config(run: RunDir, **cfg: Any) -> dict[str, Any]:
    """axolotl.yml with `cfg` (base_model required by readers), as a run leaves it."""
    run.path.mkdir(parents=True, exist_ok=True)
    run.config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return cfg


def record_metrics(
    run: RunDir,
    losses: Sequence[float],
    *,
    tokens: int = 500,
    peak_gib: float = 3.2,
    kind: str = "cuda_max_memory_reserved",
    finish: bool = True,
) -> None:
    """Steps 1..len(losses) through the plugin's recorder: 0.5 s a step, lr rising."""
    clock = itertools.count(start=1000.0, step=0.5)
    recorder = MetricsRecorder(
        run.path, now=lambda: next(clock), memory=lambda: (peak_gib, kind), device="NVIDIA A10G"
    )
    recorder.begin(max_steps=len(losses))
    for step, loss in enumerate(losses, start=1):
        recorder.step(step=step, epoch=step / len(losses), tokens=tokens)
        recorder.log(step=step, logs={"loss": loss, "learning_rate": 1e-4 * step, "grad_norm": 1.0})
    if finish:
        recorder.finish({"predicted_gib": 3.0})


def write_checkpoint_evals(run: RunDir, step: int, evals: dict[int, float]) -> Path:
    """output/checkpoint-<step>/trainer_state.json with eval_loss entries, as the Trainer saves it."""
    from transformers import TrainerState

    folder = run.output / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    history: list[dict[str, Any]] = [{"loss": 2.0, "step": 1}]
    history += [{"eval_loss": v, "eval_runtime": 0.1, "step": s} for s, v in evals.items()]
    TrainerState(global_step=step, log_history=history).save_to_json(
        str(folder / "trainer_state.json")
    )
    return folder


def tokenized_rows(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[dict[str, list[int]]]:
    """Rows as Axolotl's chat_template strategy leaves them: labels only on the answer."""
    rows = []
    for question, answer in pairs:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        ids = prompt_ids + answer_ids
        rows.append(
            {
                "input_ids": ids,
                "labels": [-100] * len(prompt_ids) + answer_ids,
                "attention_mask": [1] * len(ids),
            }
        )
    return rows


def write_prepared(run: RunDir, rows: list[dict[str, list[int]]], name: str = "0123abcd") -> Path:
    """A prepared dataset under prepared/<hash>, and the train.log line naming it."""
    from datasets import Dataset

    path = run.prepared / name
    Dataset.from_list(rows).save_to_disk(str(path))
    with run.train_log.open("a", encoding="utf-8") as fh:
        fh.write(
            "[2026-01-01 10:00:00,000] [INFO] [axolotl.utils.data.shared] "
            f"Loading prepared dataset from disk at {path}...\n"
        )
    return path


def planned(run: RunDir, **plan_values: Any) -> dict[str, Any]:
    """plan.json as `run` writes it for a planned LoRA run (fake_runs.planned_record)."""
    from fake_runs import write_planned_record  # plans with the shipped policy

    return write_planned_record(run.path, **plan_values)


def report_json(stdout: str) -> dict[str, Any]:
    obj = json.loads(stdout)
    assert isinstance(obj, dict)
    return obj


def documented_keys() -> dict[str, set[str]]:
    """docs/report.md's `report --json` tables: key -> the backticked names in its meaning.

    A row "| `a.b`, `a.c` | ... `x` ... `y` |" documents keys a.b and a.c, and, for
    keys that hold an object, its own keys x and y.
    """
    docs = Path(__file__).resolve().parent.parent / "docs" / "report.md"
    text = docs.read_text(encoding="utf-8").split("## `report --json`", 1)[1]
    keys: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        meaning = set(re.findall(r"`([^`]+)`", cells[1]))
        for name in re.findall(r"`([^`]+)`", cells[0]):
            keys[name.replace("[]", "")] = meaning
    return keys


def keys_under(documented: dict[str, set[str]], prefix: str) -> set[str]:
    """The documented keys of the object at `prefix` ("" for the top level)."""
    if not prefix:
        return {k for k in documented if "." not in k}
    return {k[len(prefix) + 1 :] for k in documented if k.startswith(prefix + ".")}
