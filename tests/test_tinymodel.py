"""The tiny demo/test model: loadable, deterministic, with a working chat template."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_and_config(tiny_model: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ):
        assert (tiny_model / name).is_file(), name
    cfg = json.loads((tiny_model / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"]) == (64, 2)
    assert cfg["num_key_value_heads"] < cfg["num_attention_heads"]  # GQA, like Llama 3


def test_tokenizer_special_tokens_and_chat_template(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "<|im_end|>", "<pad>")
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
        tokenize=False,
    )
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # the turn markers are single tokens, so Axolotl can mask and stop on them
    assert ids.count(tok.convert_tokens_to_ids("<|im_end|>")) == 2
    assert tok.decode(ids) == text
    # byte-level: any text round-trips, no unknown token
    odd = "naïve café — 日本語 ✓ \t\n"
    assert tok.decode(tok(odd, add_special_tokens=False)["input_ids"]) == odd


def test_model_runs_and_vocab_matches(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.vocab_size == len(tok)
    with torch.no_grad():
        out = model(**tok("Brindlemoor", return_tensors="pt"))
    assert out.logits.shape[-1] == len(tok)


def test_build_is_deterministic_and_cached(tiny_model: Path, tmp_path: Path) -> None:
    from axo_helper.tinymodel import build_tiny_model

    again = build_tiny_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json"):
        assert _sha(again / name) == _sha(tiny_model / name)
    before = (again / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(again) == again  # same parameters: reused, not rebuilt
    assert (again / "model.safetensors").stat().st_mtime_ns == before


def test_bundled_data_is_chat_format() -> None:
    from axo_helper.tinymodel import demo_data_path

    rows = [json.loads(line) for line in demo_data_path("qa.jsonl").read_text().splitlines()]
    assert 200 <= len(rows) <= 1000
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[-1] == "assistant" and "user" in roles
        assert all(m["content"] for m in row["messages"])
    assert len(demo_data_path("corpus.txt").read_text()) > 2000


def test_pretraining_lowers_the_corpus_loss_deterministically(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo_helper.tinymodel import (
        MARKER,
        build_tiny_model,
        corpus_ids,
        corpus_loss,
        pretrain_stats,
    )

    random = build_tiny_model(tmp_path / "random")
    first = build_tiny_model(tmp_path / "first", pretrain_steps=30)
    second = build_tiny_model(tmp_path / "second", pretrain_steps=30)
    assert pretrain_stats(random) is None
    stats = pretrain_stats(first)
    assert stats is not None and stats["steps"] == 30

    ids = corpus_ids(AutoTokenizer.from_pretrained(first))
    before = corpus_loss(AutoModelForCausalLM.from_pretrained(random), ids)
    after = corpus_loss(AutoModelForCausalLM.from_pretrained(first), ids)
    assert before > 6.0  # ~ln(vocab): the random init knows nothing
    assert after < before - 1.0, (before, after)
    assert abs(stats["loss_before"] - before) < 1e-3 and abs(stats["loss_after"] - after) < 1e-3

    # same seed and settings: the same weights; the tokenizer is untouched by pretraining
    assert _sha(first / "model.safetensors") == _sha(second / "model.safetensors")
    assert _sha(first / "tokenizer.json") == _sha(random / "tokenizer.json")
    assert _sha(first / "model.safetensors") != _sha(random / "model.safetensors")

    # pretrain_steps is part of the cache key: a different value rebuilds, the same reuses
    assert json.loads((first / MARKER).read_text())["pretrain_steps"] == 30
    before_ns = (first / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(first, pretrain_steps=30) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == before_ns
    build_tiny_model(first)  # pretrain_steps=0: rebuilt random, the stats file removed
    assert _sha(first / "model.safetensors") == _sha(random / "model.safetensors")
    assert pretrain_stats(first) is None
