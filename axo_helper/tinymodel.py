"""A tiny Llama-architecture model built offline: the demo's and the tests' base model.

`build_tiny_model(out_dir)` writes a directory that Axolotl and transformers load
like any hub checkpoint (config.json, model.safetensors, generation_config.json,
tokenizer.json, tokenizer_config.json, chat_template.jinja), with no network:

- random weights, seeded, so two builds give the same bytes; optionally
  "pretrained" for a few hundred plain-torch steps on the bundled prose
  (demo_data/corpus.txt, never the Q&A rows), so the base model knows the
  made-up town's words and facts before a fine-tune teaches it to answer
  questions (the demo does this; the tests' fixture stays random and fast);
- a byte-level BPE tokenizer trained with the `tokenizers` library on the text
  shipped in axo_helper/demo_data/ (any UTF-8 text round-trips; byte-level needs
  no unknown token);
- a ChatML-style chat template with <|im_start|>/<|im_end|>; <|im_end|> is also
  the eos token, so Axolotl's chat_template strategy ends every assistant turn
  with it and generation stops there (the way Qwen2.5-Instruct does it).

`family=TinyFamily(...)` builds another family's classes (Mixtral, Qwen, Gemma-2, ...)
with its special tokens, its real vocabulary size and its chat template, if any
(tests/tinymodel_families.py holds the ones the chat tests use).

torch, transformers and tokenizers are imported inside the functions: importing
this module costs nothing, and `plan` never loads it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
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
# What pretraining measured (loss before/after, seconds), when it ran.
PRETRAIN_STATS = "axo_tiny_pretrain.json"

# Pretraining: random windows of the corpus token stream, AdamW, causal LM loss.
PRETRAIN_SEQ_LEN = 128
PRETRAIN_BATCH = 16
PRETRAIN_LR = 3e-3


@dataclass(frozen=True)
class TinyFamily:
    """A family's classes, its vocabulary's special tokens (ids 0.., in order), its size."""

    name: str
    config_class: str  # transformers class names: "MixtralConfig", "MixtralForCausalLM"
    model_class: str
    specials: tuple[str, ...]
    eos: str
    bos: str | None = None
    pad: str | None = None
    unk: str | None = None
    vocab_size: int = 0  # the config's vocab_size; 0: the tokenizer's own size
    chat_template: str | None = None  # None: a base checkpoint without a template
    config: tuple[tuple[str, Any], ...] = ()  # extra config kwargs


DEMO = TinyFamily("demo", "LlamaConfig", "LlamaForCausalLM", SPECIAL_TOKENS, EOS, BOS, PAD,
                  chat_template=CHAT_TEMPLATE)  # fmt: skip


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


def _data_digest() -> str:
    """Short hash of the bundled text: the tokenizer and pretraining depend on it."""
    h = hashlib.sha256()
    for name in ("corpus.txt", "qa.jsonl"):
        h.update(demo_data_path(name).read_bytes())
    return h.hexdigest()[:16]


def corpus_ids(tokenizer: Any) -> list[int]:
    """The corpus as one token stream (no special tokens): the pretraining text."""
    text = demo_data_path("corpus.txt").read_text(encoding="utf-8")
    # The backend tokenizer: the fast wrapper warns when a text exceeds model_max_length.
    return list(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)


def corpus_loss(model: Any, ids: list[int], seq_len: int = PRETRAIN_SEQ_LEN) -> float:
    """Mean causal LM loss over the corpus cut into consecutive windows of seq_len."""
    import torch

    n = max(1, (len(ids) - 1) // seq_len)
    windows = torch.tensor([ids[i * seq_len : (i + 1) * seq_len] for i in range(n)])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        loss = float(model(input_ids=windows, labels=windows).loss)
    model.train(was_training)
    return loss


def pretrain(model: Any, ids: list[int], *, steps: int, seed: int) -> dict[str, Any]:
    """Train `model` in place on random windows of `ids`; deterministic for a seed.

    Plain torch: AdamW (betas 0.9/0.95, no weight decay), 5% linear warm-up then
    cosine decay to a tenth of PRETRAIN_LR, gradients clipped at 1.0. Returns the
    corpus loss before and after, and the seconds it took.
    """
    import torch

    started = time.monotonic()
    seq_len = min(PRETRAIN_SEQ_LEN, len(ids) - 1)
    data = torch.tensor(ids)
    gen = torch.Generator().manual_seed(seed)
    before = corpus_loss(model, ids, seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=PRETRAIN_LR, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, steps // 20)

    def lr_factor(step: int) -> float:
        cosine = 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
        return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * cosine)

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - seq_len, (PRETRAIN_BATCH,), generator=gen)
        batch = torch.stack([data[int(i) : int(i) + seq_len] for i in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    after = corpus_loss(model, ids, seq_len)
    return {
        "steps": steps,
        "corpus_tokens": len(ids),
        "corpus_bytes": demo_data_path("corpus.txt").stat().st_size,
        "loss_before": round(before, 4),
        "loss_after": round(after, 4),
        "seconds": round(time.monotonic() - started, 1),
    }


def build_tokenizer(vocab_size: int = 1024, family: TinyFamily | None = None) -> Any:
    """Train a byte-level BPE tokenizer on the bundled text; return a PreTrainedTokenizerFast
    with the family's special tokens, bos/eos/pad/unk and chat template (default: DEMO's)."""
    family = family or DEMO
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
        special_tokens=list(family.specials),
        # All 256 byte symbols, so any text encodes even when the corpus lacks a byte.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    roles = {"bos_token": family.bos, "eos_token": family.eos}
    roles |= {"pad_token": family.pad, "unk_token": family.unk}
    names = {k: v for k, v in roles.items() if v}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        **names,
        additional_special_tokens=[t for t in family.specials if t not in names.values()],
        # Like Qwen/ChatML models: no BOS is prepended; the chat template marks turns
        # (the families' templates write their bos themselves).
        add_bos_token=False,
        add_eos_token=False,
        model_max_length=2048,
        clean_up_tokenization_spaces=False,
        padding_side="right",
    )
    if family.chat_template:
        fast.chat_template = family.chat_template
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
    pretrain_steps: int = 0,
    threads: int | None = None,
    family: TinyFamily | None = None,
) -> Path:
    """Write a tiny LlamaForCausalLM with a trained tokenizer to `out_dir`; return it.

    Defaults give about 0.2M random parameters: a training step on CPU takes
    milliseconds, so the time of an end-to-end run is Axolotl's own start-up.
    kv_heads < heads exercises grouped-query attention like Llama 3; the untied
    lm_head is the Llama 3.1 8B layout, so merges and memory estimates see both
    matrices. pretrain_steps > 0 then trains the random model on the bundled prose
    (`pretrain`), seeded, and writes what it measured to PRETRAIN_STATS. `threads`
    caps torch's CPU threads while pretraining (the demo passes 1 on a busy machine);
    it changes the speed, not the weights (same bytes with 1 and 2 threads), so it
    is not part of the cache key. `family`: another family's model (see TinyFamily).
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
        "pretrain_steps": pretrain_steps,
        "data": _data_digest(),
    }
    family = family or DEMO
    if family != DEMO:  # absent for the demo model, so its marker stays as it was
        params["family"] = asdict(family)
    if _is_built(out_dir, params):
        return out_dir
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the [train] extra is missing
        raise MissingExtraError("building the tiny model") from exc

    tokenizer = build_tokenizer(vocab_size, family)
    config = _config(
        tokenizer,
        family,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
    )
    model, stats = _make_model(config, tokenizer, family.model_class, seed, pretrain_steps, threads)
    _save(out_dir, model, tokenizer, stats, params)
    return out_dir


def _is_built(out_dir: Path, params: dict[str, Any]) -> bool:
    """The directory already holds a model built with exactly these parameters."""
    marker = out_dir / MARKER
    if marker.is_file() and (out_dir / "model.safetensors").is_file():
        try:
            return bool(json.loads(marker.read_text(encoding="utf-8")) == params)
        except (OSError, ValueError):
            pass  # unreadable marker: rebuild
    return False


def _config(
    tokenizer: Any,
    family: TinyFamily,
    *,
    hidden_size: int,
    intermediate_size: int,
    layers: int,
    heads: int,
    kv_heads: int,
    max_position_embeddings: int,
    tie_word_embeddings: bool,
) -> Any:
    import transformers

    roles = (family.bos, family.eos, family.pad)
    bos, eos, pad = (tokenizer.convert_tokens_to_ids(t) if t else None for t in roles)
    config = getattr(transformers, family.config_class)(
        # The demo's vocabulary is exactly the tokenizer's, special tokens included; a
        # family's is padded to its real size, the rows past the tokenizer never used.
        vocab_size=max(len(tokenizer), family.vocab_size),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        rms_norm_eps=1e-5,
        # Real-size init (0.02) makes a 64-wide model's logits near-uniform; fine for
        # a random start that training then moves.
        initializer_range=0.02,
        **dict(family.config),
    )
    # fp32: CPU training (the demo and tests) runs in fp32 (bf16: false in the YAML).
    config.dtype = "float32"
    return config


def _make_model(
    config: Any, tokenizer: Any, model_class: str, seed: int, steps: int, threads: int | None
) -> tuple[Any, dict[str, Any] | None]:
    """The seeded random model, pretrained for steps > 0: (model, stats or None)."""
    import torch
    import transformers
    from transformers import GenerationConfig

    # Seed only a private generator state: save and restore the global RNG so a
    # caller's own seeding is left alone.
    previous_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, model_class)(config)
        stats = None
        if steps > 0:
            if threads:
                torch.set_num_threads(threads)
            try:
                stats = pretrain(model, corpus_ids(tokenizer), steps=steps, seed=seed)
            finally:
                torch.set_num_threads(previous_threads)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        max_new_tokens=48,
    )
    return model, stats


def _save(
    out_dir: Path,
    model: Any,
    tokenizer: Any,
    stats: dict[str, Any] | None,
    params: dict[str, Any],
) -> None:
    """Model, tokenizer, pretraining stats, and last the marker that says it is complete."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    stats_file = out_dir / PRETRAIN_STATS
    if stats is not None:
        stats_file.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    elif stats_file.exists():
        stats_file.unlink()  # a random rebuild over a pretrained one
    (out_dir / MARKER).write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")


def pretrain_stats(model_dir: Path) -> dict[str, Any] | None:
    """What pretraining measured for the model in `model_dir`; None for a random model."""
    try:
        data = json.loads((Path(model_dir) / PRETRAIN_STATS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
