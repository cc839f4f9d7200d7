"""Run directories fabricated the way `axo-helper run` + Axolotl leave them, and the
logits the export tests compare (tests/export/).

PEFT's save_pretrained of a LoRA with random non-zero B matrices, the tokenizer, the
base's config.json in output/: a real `axolotl train` is exercised once, in the
plugin tests. make_run and the logits need the train extra (the test modules
importorskip it first); the plan.json helpers need nothing.

plan.json is never written by hand here: `planned_record` is what `run` writes
(run/record.plan_entries of a real Plan, Attempt.as_dict for the attempts), written
through rundir's own writer, so a reader cannot pass a test on a shape nobody writes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from planner_helpers import POLICY, gpu, mdl, qa_data

from axo_helper import planner
from axo_helper.run.record import plan_entries
from axo_helper.run.request import Attempt
from axo_helper.rundir import RunDir
from axo_helper.specs import Method

PROMPTS = [
    "<|im_start|>user\nWhat is Twelve Bells Day?<|im_end|>\n<|im_start|>assistant\n",
    "The tower bell rings twelve times at noon",
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAINED_TEMPLATE_MARK = "{# trained #}"
BASE_EOS = "<|endoftext|>"  # base_with_eos's eos, Qwen2.5 base's


def _pin(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Overwrite values of the Plan's object in place; a key it lacks is a test bug."""
    for key, value in values.items():
        assert key in target, f"the plan's --json object has no {key!r}"
        if isinstance(value, Mapping) and isinstance(target[key], dict):
            _pin(target[key], value)
        else:
            target[key] = value


def planned_record(
    *,
    rows: int = 1800,
    gpu_spec: str = "a10g",
    model: str = "Qwen/Qwen2.5-7B",
    method: Method = "qlora",
    attempt_gib: Sequence[float | None] = (),
    **plan_values: Any,
) -> dict[str, Any]:
    """plan.json's record as `run` writes it for a planned run.

    plan_values pin figures of the Plan's --json object (e.g. gpu=..., memory={
    "total_gib": 1.5}); the record's `memory` is the same object, as in `run`.
    attempt_gib: one training attempt per entry, with that estimate.
    """
    plan = planner.plan(gpu(gpu_spec), mdl(model), qa_data(rows=rows), POLICY, method=method)
    record = plan_entries(plan)
    _pin(record["plan"], plan_values)
    record["attempts"] = [
        Attempt(
            number=i,
            micro_batch_size=plan.setup.micro_batch_size,
            gradient_accumulation_steps=plan.gradient_accumulation_steps,
            gradient_checkpointing=plan.setup.gradient_checkpointing,
            resumed_from=None,
            command="axolotl train axolotl.yml",
            outcome="finished",
            memory_total_gib=gib,
        ).as_dict()
        for i, gib in enumerate(attempt_gib, start=1)
    ]
    return record


def write_planned_record(run_dir: Path, **kwargs: Any) -> dict[str, Any]:
    """Write planned_record(**kwargs) as plan.json through rundir; the record read back."""
    rd = RunDir(run_dir)
    rd.write_plan_record(planned_record(**kwargs))
    record = rd.read_plan_record()
    assert record is not None
    return record


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
    method: Method = "lora",
    bf16: bool = False,
    seed: int = 0,
    extra_cfg: dict[str, Any] | None = None,
    trained_eos: str | None = None,
) -> Path:
    """A run directory as `axo-helper run` + Axolotl leave it, without training.

    trained_eos: the eos the trained tokenizer was saved with (Axolotl sets it from
    `special_tokens.eos_token`).
    """
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
    if trained_eos:
        tok.eos_token = trained_eos
    tok.save_pretrained(out)
    cfg.update(extra_cfg or {})
    RunDir(run).config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    # The plan stands in for the one `run` made: the export reads it, never trains on it.
    write_planned_record(
        run,
        rows=20,
        gpu_spec="t4",
        model="HuggingFaceTB/SmolLM2-135M",
        method=method,
        memory={"total_gib": 1.5},
    )
    RunDir(run).metrics_summary.write_text(
        json.dumps({"device": "cpu", "peak_memory_gib": 0.9, "tokens_per_s": 300.0, "steps": 3}),
        encoding="utf-8",
    )
    return run


def base_with_eos(root: Path, base: Path, eos: str = BASE_EOS) -> Path:
    """The tiny model as a base model whose eos is not its chat turn terminator.

    Like Qwen2.5-7B base: the ChatML template ends turns with <|im_end|>, the eos
    (config, generation_config, tokenizer) is a new <|endoftext|> token.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"eos_token": eos})
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model.resize_token_embeddings(len(tok))
    eos_id = tok.convert_tokens_to_ids(eos)
    model.config.eos_token_id = eos_id
    model.generation_config.eos_token_id = eos_id
    out = root / "base-with-eos"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


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
