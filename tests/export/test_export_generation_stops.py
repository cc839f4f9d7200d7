"""After a real fine-tune and export, greedy generation stops at the turn terminator.

The demo's pretrained tiny Llama (ChatML, `<|im_end|>` ends a turn) is fine-tuned
with real Axolotl LoRA on CPU on the bundled Q&A pairs as single-turn OpenAI chats,
planned like the demo (its overrides and steps), and exported. The merged model is
then loaded with plain transformers, as a user would, and must stop by itself:
generation_config.json's eos_token_id carries the config's terminator, and each
greedy answer ends with it well before max_new_tokens. The answers must also be the
trained ones, so the stop is learned, not the luck of an untrained model.

Slow: about a minute on 2 CPU cores (pretraining, two Axolotl processes, the export).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("axolotl", reason="needs the [train] extra")

MAX_NEW_TOKENS = 48
# Training questions about the town's facts (the first is the demo's own); the bundled
# rows answer most questions in two phrasings, and either counts as the trained answer.
QUESTIONS = (
    "How long does the cable railway take?",
    "Who built the first tower clock?",
    "Does Brindlemoor elect its mayor?",
)


def qa_pairs(source: Path) -> list[tuple[str, str]]:
    """Every (user, assistant) turn pair of the bundled rows, system turns left out."""
    pairs = []
    for line in source.read_text(encoding="utf-8").splitlines():
        turns = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        pairs += [
            (u["content"], a["content"]) for u, a in zip(turns[::2], turns[1::2], strict=True)
        ]
    return pairs


def write_chats(pairs: list[tuple[str, str]], path: Path) -> Path:
    """One single-turn OpenAI chat per pair: user = question, assistant = answer."""
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in pairs
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def trained_answers(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Each question with every answer the data gives it."""
    answers: dict[str, set[str]] = defaultdict(set)
    for q, a in pairs:
        answers[q].add(a)
    return answers


def config_terminator(run_dir: Path) -> str:
    """The token the rendered config trains to end an assistant turn."""
    cfg = yaml.safe_load((run_dir / "axolotl.yml").read_text(encoding="utf-8"))
    eot = cfg.get("eot_tokens") or []
    eos = (cfg.get("special_tokens") or {}).get("eos_token")
    tokens = [*eot, *([eos] if eos else [])]
    assert tokens, "the planned chat config sets neither eot_tokens nor special_tokens.eos_token"
    return str(tokens[0])


def fine_tune(tmp_path: Path, threads: int | None) -> tuple[Path, list[tuple[str, str]]]:
    """The demo's model, LoRA-tuned on the chats and exported: (run dir, the pairs)."""
    from axo_helper import hardware
    from axo_helper.core import PlanRequest
    from axo_helper.demo import DEMO_MAX_STEPS, DEMO_MODEL, DEMO_OVERRIDES
    from axo_helper.export import export_run
    from axo_helper.launch import captured_output
    from axo_helper.run.request import RunRequest
    from axo_helper.run.start import start_run
    from axo_helper.tinymodel import build_tiny_model, demo_data_path

    with captured_output():
        model = build_tiny_model(tmp_path / "tiny-model", threads=threads, **DEMO_MODEL)
    pairs = qa_pairs(demo_data_path("qa.jsonl"))
    data = write_chats(pairs, tmp_path / "chats.jsonl")
    req = RunRequest(
        plan=PlanRequest(gpu="cpu", model=str(model), data=str(data), allow_cpu=True),
        hardware=hardware.resolve("cpu", allow_cpu=True),
        output_dir=tmp_path / "run",
        max_steps=DEMO_MAX_STEPS,
        overrides=DEMO_OVERRIDES,
        export=False,  # exported below, by the function under test
        quiet=True,
    )
    result = start_run(req)
    assert result.status == "finished", result.message
    export_run(result.run_dir)
    return result.run_dir, pairs


def generate(merged: Path, questions: list[str]) -> tuple[Any, list[list[int]], list[str]]:
    """Greedy answers from merged/ loaded as a user would: (generation config, ids, text)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(merged)
    lm = AutoModelForCausalLM.from_pretrained(merged).eval()
    gen = GenerationConfig.from_pretrained(merged)
    gen.update(do_sample=False, max_new_tokens=MAX_NEW_TOKENS, pad_token_id=tokenizer.pad_token_id)
    new_ids, texts = [], []
    for q in questions:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = lm.generate(**ids, generation_config=gen)
        new = out[0][ids["input_ids"].shape[1] :].tolist()
        new_ids.append(new)
        texts.append(str(tokenizer.decode(new, skip_special_tokens=True)).strip())
    return gen, new_ids, texts


def test_exported_model_stops_at_the_turn_terminator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    from axo_helper.demo import busy_cpu_threads

    # As the demo does: on a CPU other work keeps busy, one torch thread per free core
    # (the Axolotl processes inherit it); two threads on one free core took 291 s, not 62.
    threads = busy_cpu_threads()
    if threads is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    run_dir, pairs = fine_tune(tmp_path, threads)
    merged = run_dir / "merged"
    terminator = config_terminator(run_dir)
    term_id = AutoTokenizer.from_pretrained(merged).convert_tokens_to_ids(terminator)

    answers = trained_answers(pairs)
    questions = list(QUESTIONS)
    assert all(q in answers for q in questions)  # training questions, not new ones
    gen, new_ids, texts = generate(merged, questions)

    stops = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert term_id in stops, (terminator, term_id, stops)
    for q, ids, text in zip(questions, new_ids, texts, strict=True):
        # Stopped by itself: the last token is a terminator, before the length limit.
        assert ids[-1] in stops and len(ids) < MAX_NEW_TOKENS, (q, len(ids), text)
    right = [t in answers[q] for q, t in zip(questions, texts, strict=True)]
    assert sum(right) >= 2, list(zip(questions, texts, strict=True))
