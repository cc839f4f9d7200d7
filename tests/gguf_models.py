"""Models and llama.cpp checkouts for the GGUF tests (tests/export/test_gguf.py).

llama.cpp's converter knows a byte-level BPE tokenizer (GPT-2, Llama 3, Qwen) only by
a checksum of its pre-tokenizer over a fixed text, and the tiny model's tokenizer is
trained here, so no checksum can match. A SentencePiece-style BPE (byte fallback,
"▁" for spaces; Llama 2, Mistral, TinyLlama) is converted from tokenizer.json
itself: `llama2_style_base` gives the tiny model that tokenizer, trained on the same
bundled text with the same special tokens and chat template.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from axo_helper import tinymodel
from axo_helper.export.llama_cpp import LLAMA_CPP_PYTHON

REPO = Path(__file__).resolve().parents[1]
# Where scripts/setup.sh unpacks the llama-cpp-python sdist's converter.
CACHED_SDIST = REPO / ".cache" / "llama-cpp" / f"llama_cpp_python-{LLAMA_CPP_PYTHON}"
SPACE = "▁"


def cached_llama_cpp() -> Path:
    """The sdist setup.sh fetched; CI fails without it, elsewhere the test is skipped."""
    if (CACHED_SDIST / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py").is_file():
        return CACHED_SDIST
    why = f"no llama.cpp converter in {CACHED_SDIST}: run `bash scripts/setup.sh` (it fetches it)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def _byte_fallback_tokenizer(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(tinymodel.SPECIAL_TOKENS)
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    draft = Tokenizer(models.BPE())
    draft.normalizer = normalizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(byte_tokens),
        min_frequency=2,
        special_tokens=specials,
        show_progress=False,
    )
    draft.train_from_iterator(tinymodel._training_text(), trainer=trainer)
    trained = json.loads(draft.to_str())["model"]
    learned = sorted((t for t in trained["vocab"] if t not in specials), key=trained["vocab"].get)
    vocab = {t: i for i, t in enumerate([*specials, *byte_tokens, *learned])}
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizer
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace(SPACE, " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=tinymodel.BOS,
        eos_token=tinymodel.EOS,
        pad_token=tinymodel.PAD,
        additional_special_tokens=[tinymodel.IM_START],
        add_bos_token=False,
        add_eos_token=False,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = tinymodel.CHAT_TEMPLATE
    return fast


def llama2_style_base(root: Path, tiny_model: Path) -> Path:
    """The tiny model with a byte-fallback BPE tokenizer of the same size (see above)."""
    out = root / "tiny-llama2-tokenizer"
    shutil.copytree(tiny_model, out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (out / name).unlink(missing_ok=True)
    vocab_size = json.loads((tiny_model / "config.json").read_text())["vocab_size"]
    tok = _byte_fallback_tokenizer(vocab_size)
    assert len(tok) == vocab_size  # every embedding row has a token, as in a real model
    tok.save_pretrained(out)
    return out


def fake_llama_cpp(root: Path, converter: str = "", quantize: str | None = None) -> Path:
    """A llama.cpp directory whose tools are small Python scripts (the error paths).

    converter / quantize: the scripts' bodies; quantize None: no llama-quantize built.
    """
    out = root / "fake-llama.cpp"
    (out / "gguf-py").mkdir(parents=True)
    (out / "convert_hf_to_gguf.py").write_text(converter, encoding="utf-8")
    if quantize is not None:
        exe = out / "build" / "bin" / "llama-quantize"
        exe.parent.mkdir(parents=True)
        exe.write_text(f"#!{sys.executable}\n{quantize}", encoding="utf-8")
        exe.chmod(0o755)
    return out
