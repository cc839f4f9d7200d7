"""The turn terminator (export/stops.py): which tokens end a trained turn, their ids
from the trained tokenizer's files, generation_config.json's eos_token_id and the
Modelfile's stop strings. Tokenizer files are written as JSON: no torch needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ollama_modelfile
import pytest

from axo_helper.export.ollama import modelfile
from axo_helper.export.source import RunInfo
from axo_helper.export.stops import (
    TurnTerminator,
    stop_at_terminator,
    terminator_warnings,
    turn_terminator,
)
from axo_helper.export.tokenizer import token_ids

CHATML = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
# Phi-3's format: Ollama has no Go template for it here, so only the terminator stops it.
PHI3 = "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
ADDED = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<|end|>": 5}


def tokenizer_dir(root: Path, template: str, eos: str, added: dict[str, int] = ADDED) -> Path:
    """A saved tokenizer as transformers writes it: tokenizer.json + tokenizer_config.json."""
    out = root / "output"
    out.mkdir(exist_ok=True)
    tok = {
        "added_tokens": [{"id": i, "content": t, "special": True} for t, i in added.items()],
        "model": {"type": "BPE", "vocab": {"a": 10, "b": 11}, "merges": []},
    }
    (out / "tokenizer.json").write_text(json.dumps(tok))
    (out / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": eos, "chat_template": template})
    )
    return out


def test_token_ids_come_from_the_saved_files(tmp_path: Path) -> None:
    out = tokenizer_dir(tmp_path, CHATML, "<|endoftext|>")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"added_tokens_decoder": {"7": {"content": "<extra>", "special": True}}})
    )
    ids = token_ids(out)
    assert ids["<|im_end|>"] == 2 and ids["a"] == 10 and ids["<extra>"] == 7
    assert "<|eot_id|>" not in ids  # never guessed


def test_eot_tokens_of_the_config_and_the_tokenizer_eos(tmp_path: Path) -> None:
    out = tokenizer_dir(tmp_path, CHATML, "<|endoftext|>")
    term = turn_terminator({"eot_tokens": ["<|im_end|>"]}, out)
    assert term == TurnTerminator(("<|im_end|>", "<|endoftext|>"), (2, 0), ())


def test_base_model_eos_from_special_tokens(tmp_path: Path) -> None:
    # Axolotl saved the tokenizer with the new eos; the config names it too.
    out = tokenizer_dir(tmp_path, CHATML, "<|im_end|>")
    cfg = {"chat_template": "chatml", "special_tokens": {"eos_token": "<|im_end|>"}}
    term = turn_terminator(cfg, out)
    assert term is not None and term.tokens == ("<|im_end|>",) and term.ids == (2,)


def test_an_eot_token_the_template_never_writes_is_no_terminator(tmp_path: Path) -> None:
    # Phi-4's ChatML with Phi-3's <|end|> configured: Axolotl drops it, the template's
    # own <|im_end|> ends the turns.
    out = tokenizer_dir(tmp_path, CHATML, "<|endoftext|>")
    term = turn_terminator({"eot_tokens": ["<|end|>"]}, out)
    assert term is not None and term.tokens == ("<|im_end|>", "<|endoftext|>")


def test_no_chat_keys_no_terminator(tmp_path: Path) -> None:
    out = tokenizer_dir(tmp_path, CHATML, "<|endoftext|>")
    assert turn_terminator({"datasets": [{"path": "x", "type": "alpaca"}]}, out) is None


def test_a_terminator_without_an_id_is_a_warning(tmp_path: Path) -> None:
    out = tokenizer_dir(tmp_path, "<|turn_end|>", "<|endoftext|>")
    term = turn_terminator({"eot_tokens": ["<|turn_end|>"]}, out)
    assert term is not None and term.ids == (0,) and term.unknown == ("<|turn_end|>",)
    (warning,) = terminator_warnings(term)
    assert "<|turn_end|>" in warning and "generation_config.json" in warning


def test_generation_config_keeps_the_base_fields(tmp_path: Path) -> None:
    base, dest = tmp_path / "base", tmp_path / "dest"
    base.mkdir()
    dest.mkdir()
    base_gen: dict[str, Any] = {"bos_token_id": 1, "eos_token_id": 0, "temperature": 0.7}
    (base / "generation_config.json").write_text(json.dumps(base_gen))
    term = TurnTerminator(("<|im_end|>", "<|endoftext|>"), (2, 0), ())
    assert stop_at_terminator(dest, term, [base])
    gen = json.loads((dest / "generation_config.json").read_text())
    assert gen == {"bos_token_id": 1, "eos_token_id": [2, 0], "temperature": 0.7}


def test_generation_config_from_the_model_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"eos_token_id": [9, 2], "pad_token_id": 4, "hidden_size": 8})
    )
    assert stop_at_terminator(tmp_path, TurnTerminator(("<|im_end|>",), (2,), ()))
    gen = json.loads((tmp_path / "generation_config.json").read_text())
    assert gen == {"eos_token_id": [2, 9], "pad_token_id": 4}


def test_no_ids_writes_nothing(tmp_path: Path) -> None:
    assert not stop_at_terminator(tmp_path, TurnTerminator(("<|x|>",), (), ("<|x|>",)))
    assert not (tmp_path / "generation_config.json").exists()


@pytest.mark.parametrize(
    ("cfg", "stops"),
    [
        # Today's stops for an unknown format were the eos only.
        ({"eot_tokens": ["<|end|>"]}, ["<|end|>", "<|endoftext|>"]),
        ({}, ["<|endoftext|>"]),
    ],
)
def test_modelfile_stops_at_the_terminator(
    tmp_path: Path, cfg: dict[str, Any], stops: list[str]
) -> None:
    out = tokenizer_dir(tmp_path, PHI3, "<|endoftext|>")
    info = RunInfo(tmp_path / "run", cfg, out, "org/base", "lora", None, None)
    commands = ollama_modelfile.parse(modelfile(info, merged=True, adapter=False))
    assert [v for name, v in commands if name == "stop"] == stops


# Exports of fabricated runs (tests/fake_runs.py): a real merge, so the train extra.


@pytest.fixture(scope="module")
def eos_base(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A base model whose eos (<|endoftext|>) is not its template's <|im_end|>."""
    pytest.importorskip("peft")
    pytest.importorskip("axolotl")
    from fake_runs import base_with_eos

    return base_with_eos(tmp_path_factory.mktemp("eos-base"), tiny_model)


def _ids(folder: Path) -> dict[str, int]:
    return token_ids(folder / "output")


@pytest.mark.axolotl
def test_export_stops_at_configured_eot_tokens(eos_base: Path, tmp_path: Path) -> None:
    from fake_runs import BASE_EOS, make_run
    from transformers import GenerationConfig

    from axo_helper.export.exporter import export_run

    cfg = {"chat_template": "tokenizer_default", "eot_tokens": ["<|im_end|>"]}
    run = make_run(tmp_path, eos_base, extra_cfg=cfg)
    result = export_run(run)
    ids = _ids(run)
    want = [ids["<|im_end|>"], ids[BASE_EOS]]
    base_gen = json.loads((eos_base / "generation_config.json").read_text())
    assert base_gen["eos_token_id"] == ids[BASE_EOS]  # the base did not stop at turns
    for variant in ("merged", "adapter"):
        gen = json.loads((run / variant / "generation_config.json").read_text())
        assert gen["eos_token_id"] == want
        assert gen["max_new_tokens"] == base_gen["max_new_tokens"]  # the base's other fields
    # transformers' generate() reads it as the list of stop ids.
    assert GenerationConfig.from_pretrained(run / "merged").eos_token_id == want
    assert 'PARAMETER stop "<|im_end|>"' in (run / "Modelfile").read_text()
    assert result.warnings == ()


@pytest.mark.axolotl
def test_export_of_a_base_model_given_the_template_eos(eos_base: Path, tmp_path: Path) -> None:
    from fake_runs import BASE_EOS, make_run

    from axo_helper.export.exporter import export_run

    cfg = {"chat_template": "chatml", "special_tokens": {"eos_token": "<|im_end|>"}}
    run = make_run(tmp_path, eos_base, extra_cfg=cfg, trained_eos="<|im_end|>")
    export_run(run, variants=["merged"])
    ids = _ids(run)
    gen = json.loads((run / "merged" / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [ids["<|im_end|>"], ids[BASE_EOS]]
    stops = [v for n, v in ollama_modelfile.parse((run / "Modelfile").read_text()) if n == "stop"]
    assert stops == ["<|im_start|>", "<|im_end|>"]


@pytest.mark.axolotl
def test_export_without_chat_keys_keeps_the_base_generation_config(
    eos_base: Path, tmp_path: Path
) -> None:
    from fake_runs import make_run

    from axo_helper.export.exporter import export_run

    run = make_run(tmp_path, eos_base)  # datasets only: no eot_tokens, eos or chat_template
    export_run(run)
    base_gen = json.loads((eos_base / "generation_config.json").read_text())
    assert json.loads((run / "merged" / "generation_config.json").read_text()) == base_gen
    assert not (run / "adapter" / "generation_config.json").exists()
