"""Run directories fabricated the way `axo-helper run` + Axolotl leave them, and the
logits the export tests compare (tests/export/).

PEFT's save_pretrained of a LoRA with random non-zero B matrices, the tokenizer, the
base's config.json in output/: a real `axolotl train` is exercised once, in the
plugin tests. Needs the train extra; the test modules importorskip it first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

PROMPTS = [
    "<|im_start|>user\nWhat is Twelve Bells Day?<|im_end|>\n<|im_start|>assistant\n",
    "The tower bell rings twelve times at noon",
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAINED_TEMPLATE_MARK = "{# trained #}"


def _base_config(base: Path, out: Path, bf16: bool) -> dict[str, Any]:
    return {
        "base_model": str(base),
        "datasets": [{"path": "qa.jsonl", "type": "chat_template"}],
        "output_dir": str(out),
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "learning_rate": 1e-3,
        "num_epochs": 1,
        "bf16": bf16,
        "fp16": False,
    }


def _save_trained(base: Path, out: Path, method: str, cfg: dict[str, Any]) -> None:
    """Axolotl's output: a perturbed full model, or a LoRA whose B matrices are not zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if method == "full":
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        model.save_pretrained(out)
        return
    cfg.update(
        adapter=method,
        lora_r=8,
        lora_alpha=16,
        lora_target_linear=True,
        load_in_4bit=method == "qlora",
    )
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: make the adapter matter
                p.copy_(torch.randn_like(p) * 0.05)
    peft_model.save_pretrained(str(out))
    shutil.copy2(base / "config.json", out / "config.json")  # Axolotl saves it too


def make_run(
    root: Path,
    base: Path,
    *,
    method: str = "lora",
    bf16: bool = False,
    seed: int = 0,
    extra_cfg: dict[str, Any] | None = None,
) -> Path:
    """A run directory as `axo-helper run` + Axolotl leave it, without training."""
    import torch
    from transformers import AutoTokenizer

    run = root / f"run-{method}-{seed}"
    out = run / "output"
    out.mkdir(parents=True)
    cfg = _base_config(base, out, bf16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _save_trained(base, out, method, cfg)
    # The trained tokenizer differs from the base's: its chat template carries a mark.
    tok = AutoTokenizer.from_pretrained(base)
    tok.chat_template = TRAINED_TEMPLATE_MARK + tok.chat_template
    tok.save_pretrained(out)
    cfg.update(extra_cfg or {})
    (run / "axolotl.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (run / "plan.json").write_text(
        json.dumps({"method": method, "memory": {"total_gib": 1.5}, "gpu": "CPU (no GPU)"}),
        encoding="utf-8",
    )
    (run / "metrics.json").write_text(
        json.dumps({"device": "cpu", "peak_memory_gib": 0.9, "tokens_per_s": 300.0, "steps": 3}),
        encoding="utf-8",
    )
    return run


def logits(model: Any, tokenizer: Any) -> Any:
    import torch

    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc).logits.float()
    mask = enc["attention_mask"].bool()
    return out[mask]  # padding positions compute nothing meaningful


def reference_logits(base: Path, adapter: Path, *, four_bit: bool = False) -> Any:
    """base + adapter through PEFT: what the trained model computes."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if four_bit:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,  # Axolotl's QLoRA settings
            bnb_4bit_compute_dtype=torch.float32,
        )
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, **kwargs), adapter)
    # bitsandbytes' CPU inference path repacks weights only in eval mode; train mode with
    # no_grad computes the same function (no dropout configured) through the plain path.
    model.train() if four_bit else model.eval()
    return logits(model, AutoTokenizer.from_pretrained(base))


def merged_logits(folder: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return logits(model, AutoTokenizer.from_pretrained(folder))
