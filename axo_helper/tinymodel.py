"""A tiny Llama-architecture model built offline: the demo's and the tests' base model.

`build_tiny_model(out_dir)` writes a directory that Axolotl and transformers load
like any hub checkpoint (config.json, model.safetensors, generation_config.json,
tokenizer.json, tokenizer_config.json, chat_template.jinja), with no network:

- random weights, seeded, so two builds give the same bytes;
- a byte-level BPE tokenizer trained with the `tokenizers` library on the text
  shipped in axo_helper/demo_data/ (any UTF-8 text round-trips; byte-level needs
  no unknown token);
- a ChatML-style chat template with <|im_start|>/<|im_end|>; <|im_end|> is also
  the eos token, so Axolotl's chat_template strategy ends every assistant turn
  with it and generation stops there (the way Qwen2.5-Instruct does it).

torch, transformers and tokenizers are imported inside the functions: importing
this module costs nothing, and `plan` never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from axo_helper.errors import MissingExtraError

BOS = "<s>"
EOS = "<|im_end|>"
PAD = "<pad>"
IM_START = "<|im_start|>"
IM_END = EOS
SPECIAL_TOKENS = (PAD, BOS, IM_START, IM_END)  # ids 0..3, in this order

# ChatML. Each turn ends with <|im_end|> + newline; with add_generation_prompt the
# assistant header is left open for the model to complete.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Written beside the model; a build with the same parameters reuses the directory.
MARKER = "axo_tiny_model.json"


def demo_data_path(name: str) -> Path:
    """A file shipped in axo_helper/demo_data/ (corpus.txt, qa.jsonl)."""
    node = resources.files("axo_helper") / "demo_data" / name
    # The package is installed as plain files (wheel or editable), never zipped.
    return Path(str(node))


def _training_text() -> Iterator[str]:
    """The corpus, then the Q&A text, so the merges cover the demo's vocabulary."""
    yield from demo_data_path("corpus.txt").read_text(encoding="utf-8").splitlines()
    with demo_data_path("qa.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            for message in json.loads(line)["messages"]:
                yield message["content"]


def build_tokenizer(vocab_size: int = 1024) -> Any:
    """Train a byte-level BPE tokenizer on the bundled text; return a PreTrainedTokenizerFast."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
        from transformers import PreTrainedTokenizerFast
    except ImportError as exc:  # pragma: no cover - the [train] extra is missing
        raise MissingExtraError("building the tiny model") from exc

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps offsets honest for the leading-space tokens byte-level makes.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, so any text encodes even when the corpus lacks a byte.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[IM_START],
        # Like Qwen/ChatML models: no BOS is prepended; the chat template marks turns.
        add_bos_token=False,
        add_eos_token=False,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: Path,
    *,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 176,
    max_position_embeddings: int = 2048,
    tie_word_embeddings: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny random LlamaForCausalLM with a trained tokenizer to `out_dir`; return it.

    Defaults give about 0.2M parameters: a training step on CPU takes milliseconds,
    so the time of an end-to-end run is Axolotl's own start-up. kv_heads < heads
    exercises grouped-query attention like Llama 3; the untied lm_head is the
    Llama 3.1 8B layout, so merges and memory estimates see both matrices.
    """
    out_dir = Path(out_dir)
    params = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "intermediate_size": intermediate_size,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": tie_word_embeddings,
        "seed": seed,
    }
    marker = out_dir / MARKER
    if marker.is_file() and (out_dir / "model.safetensors").is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == params:
                return out_dir
        except (OSError, ValueError):
            pass  # unreadable marker: rebuild

    try:
        import torch
        from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    except ImportError as exc:  # pragma: no cover - the [train] extra is missing
        raise MissingExtraError("building the tiny model") from exc

    tokenizer = build_tokenizer(vocab_size)
    # The model's vocabulary is exactly the tokenizer's, special tokens included.
    n_vocab = len(tokenizer)
    pad_id = tokenizer.convert_tokens_to_ids(PAD)
    bos_id = tokenizer.convert_tokens_to_ids(BOS)
    eos_id = tokenizer.convert_tokens_to_ids(EOS)

    config = LlamaConfig(
        vocab_size=n_vocab,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        rms_norm_eps=1e-5,
        # Real-size init (0.02) makes a 64-wide model's logits near-uniform; fine for
        # a random start that training then moves.
        initializer_range=0.02,
    )
    # fp32: CPU training (the demo and tests) runs in fp32 (bf16: false in the YAML).
    config.dtype = "float32"

    # Seed only a private generator state: save and restore the global RNG so a
    # caller's own seeding is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        max_new_tokens=48,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    marker.write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    return out_dir
