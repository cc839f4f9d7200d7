"""Estimator error against published peak-memory measurements (benchmarks/data/vram-dev.csv).

    .venv/bin/python benchmarks/estimator_error.py [--csv PATH] [--models PATH] [--worst N]

Prints, per row, the setup as mapped, the predicted and the measured memory per GPU and
the signed error (predicted - measured) / measured; then the median absolute error and
the rows furthest off, each with the reason we believe it is off.

The rows come from other training stacks than Axolotl's (Qwen's finetune.py of 2023,
litgpt of October 2023). Each stack differs from Axolotl in a few documented ways,
expressed as a `memory.Stack` below; nothing is adjusted per row. How each CSV column
maps onto a TrainSetup is in `to_setup`; docs/memory-model.md discusses the results.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from axo_helper import memory
from axo_helper.model.facts import from_dev_facts
from axo_helper.specs import GIB, ModelSpec, TrainSetup

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "data" / "vram-dev.csv"
DEFAULT_MODELS = ROOT / "benchmarks" / "data" / "vram-dev-models.json"

# ---------------------------------------------------------------------------- stacks
# QwenLM/Qwen finetune.py (2023): HF Trainer (transformers 4.32) + PEFT 0.5 + torch 2.0.
QWEN_FINETUNE = replace(
    memory.AXOLOTL,
    name="qwen_finetune_py",
    # PEFT 0.5 built lora_A/lora_B as fresh nn.Linear (default dtype fp32): fp32 adapters.
    adapter_bytes=memory.FP32_BYTES,
    # Qwen-1's remote code computes CrossEntropyLoss on 16-bit logits (after a shifted
    # .contiguous() copy); autocast puts cross_entropy on its fp32 list, so under plain
    # HF Trainer bf16 the loss peak is the same 12 B/element as transformers' .float().
    logits_bytes=12.0,
    # Under DeepSpeed HF Trainer 4.32 disables autocast: the loss stays 16-bit
    # (logits 2 + log-softmax 2 + its gradient 2).
    logits_bytes_deepspeed=6.0,
    # No Axolotl dtype juggling of embeddings in this script.
    fp32_embeddings_full_ft=False,
    # Q-LoRA rows load Qwen-7B-Chat-Int4 (GPTQ, not bitsandbytes NF4); PEFT's
    # prepare_model_for_kbit_training skips the fp32 cast for GPTQ models.
    quant_bytes=memory.GPTQ_INT4_BYTES_PER_PARAM,
    kbit_fp32="none",
    # torch 2.0 _multi_tensor_adamw: sqrt(exp_avg_sq) and a separate denom tensor.
    foreach_temp_states=2,
    # finetune/ds_config_zero2.json: reduce_bucket_size 2e8; ds_config_zero3.json:
    # sub_group_size 1e9.
    ds_reduce_bucket=2e8,
    ds_sub_group=1e9,
)

# Lightning-AI/litgpt at 8641822 / 00af8b0d (Oct 2023 - 2024): Fabric, "bf16-true".
LITGPT = replace(
    memory.AXOLOTL,
    name="litgpt",
    # bf16-true: weights, LoRA parameters and AdamW moments all bfloat16, no autocast.
    adapter_bytes=memory.HALF_BYTES,
    autocast=False,
    # lm_head_chunk_size=128 + chunked_cross_entropy on bf16 logits: the logits list
    # (2 B) and each chunk's saved log-softmax (2 B) are alive when backward starts.
    logits_bytes=4.0,
    logits_bytes_deepspeed=4.0,
    fp32_embeddings_full_ft=False,
    # Lightning's BitsandbytesPrecision replaces every nn.Linear, lm_head included.
    quantize_lm_head=True,
    # bitsandbytes 0.41.1 MatMul4Bit saved its input for backward.
    kbit_saves_input=True,
    # No prepare_model_for_kbit_training: non-quantized weights stay bf16.
    kbit_fp32="none",
    # LoRAQKVLinear: one fused qkv Linear with a single lora_dropout.
    fused_qkv_lora=True,
    foreach_temp_states=2,
    # torch 2.1 FSDP1 flat parameters (use_orig_params) carry gradient storage for the
    # frozen base as well, unsharded under no_backward_sync accumulation.
    fsdp_frozen_grads=True,
    # Without checkpointing litgpt's blocks keep ~1.25x the tensors named op by op
    # (the no-checkpointing rows, micro batch 1->4): views, casts, residual copies.
    no_checkpointing_factor=1.25,
)
LITGPT_NF4_NO_DQ = replace(LITGPT, name="litgpt-nf4", quant_bytes=memory.NF4_BYTES_PER_PARAM)
LITGPT_NF4_DQ = replace(LITGPT, name="litgpt-nf4-dq", quant_bytes=memory.NF4_DQ_BYTES_PER_PARAM)

# Gradient accumulation the sources used (sizes the FSDP no_sync effect only).
QWEN_GRAD_ACCUM = 8  # README: "batch size of 1 and gradient accumulation of 8"
LITGPT_BATCH = 128  # finetune/lora.py: batch_size 128 = micro_batch * accumulation

# Why the rows that stay far off are off (written after reading each source; see
# docs/memory-model.md). Keyed by row id prefix groups.
REASONS: dict[str, str] = {
    "qwen-019": "1.8B full FT on 1 GPU: the README does not say which launcher; ZeRO-3 (CSV) "
    "gives 16 B/param + buckets = 33 GiB, while 43.5 G stays flat from 256 to 2048 tokens",
    "qwen-043": "7B full FT, ZeRO-3 on 2 GPUs, value halved from the README's sum: the 256-token "
    "row fits; per-GPU memory then rises ~3.5 GiB per +256 tokens, 10x what activations need",
    "qwen-046": "LoRA multinode, value divided by 4 (assumed sum): the 256-token row fits, but "
    "the slope (2.4 GiB/1k tokens) exceeds the same model's single-GPU slope (1.9)",
    "qwen-037": "Q-LoRA on GPTQ int4 (auto-gptq kernels, fp16, DeepSpeed): a path we only "
    "approximate (GPTQ storage, 16-bit loss without autocast)",
    "litgpt-001": "litgpt, no checkpointing: measured 1.86 MB/token (micro batch 1->4) vs 1.24 "
    "predicted; litgpt's block keeps ~2h+3i bytes/token/layer more than its ops account for",
    "litgpt-011": "litgpt, no checkpointing: measured 5.96 MB/token vs 4.75 predicted "
    "(the same per-layer gap as phi-1.5)",
    "litgpt-002": "litgpt QLoRA, no checkpointing: the same per-layer gap, on a smaller total",
    "litgpt-037": "litgpt config-hub run, no checkpointing: the same per-layer gap",
}
GROUPS = {
    "qwen-019": ("qwen-019", "qwen-020", "qwen-021", "qwen-022", "qwen-023", "qwen-024"),
    "qwen-043": ("qwen-043", "qwen-044", "qwen-045"),
    "qwen-046": ("qwen-046", "qwen-047", "qwen-048", "qwen-049", "qwen-050", "qwen-051"),
    "qwen-037": ("qwen-037", "qwen-038", "qwen-039", "qwen-040", "qwen-041", "qwen-042"),
    "litgpt-001": ("litgpt-001", "litgpt-004", "litgpt-005"),
    "litgpt-011": ("litgpt-011", "litgpt-014"),
    "litgpt-002": ("litgpt-002", "litgpt-003", "litgpt-012", "litgpt-013", "litgpt-038"),
    "litgpt-037": ("litgpt-037",),
}


def reason_for(row_id: str) -> str:
    for key, ids in GROUPS.items():
        if row_id in ids:
            return REASONS[key]
    return ""


# ---------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class Case:
    row: dict[str, str]
    setup: TrainSetup
    stack: memory.Stack
    measured_gib: float  # per GPU, GiB
    metric: str  # "allocated" (max_memory_allocated) or "total" (process / nvidia-smi)


def _targets(row: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(lora_targets, lora_modules_to_save) for the CSV's lora_targets column."""
    kind = row["lora_targets"]
    if kind == "qv":
        return ("q_proj", "v_proj"), ()
    if kind == "all_linear":
        return ("all-linear",), ()
    if kind == "other":
        # Qwen "LoRA (emb)": c_attn, c_proj, w1, w2 (= all linear) + trainable wte, lm_head.
        return ("c_attn", "c_proj", "w1", "w2"), ("wte", "lm_head")
    return ("all-linear",), ()


def _optimizer(row: dict[str, str]) -> str:
    opt = row["optimizer"]
    if opt == "adamw":
        # finetune.py default optim=adamw_torch; DeepSpeed rows use the ds_config's AdamW
        # (FusedAdam), which the estimator treats as a DeepSpeed-owned fp32 Adam.
        return "adamw_torch_fused" if row["sharding"] in ("zero2", "zero3") else "adamw_torch"
    if opt == "adamw_bf16":
        return "adamw_torch"  # torch.optim.AdamW on bf16 parameters (foreach)
    return opt


def _stack(row: dict[str, str]) -> memory.Stack:
    if row["stack"] == "qwen_finetune_py":
        return QWEN_FINETUNE
    if row["stack"] == "litgpt":
        if "quant=nf4_dq" in row["notes"]:
            return LITGPT_NF4_DQ
        if "quant=nf4" in row["notes"]:
            return LITGPT_NF4_NO_DQ
        return LITGPT
    raise ValueError(f"{row['id']}: unknown stack {row['stack']!r}")


def _measured_gib(row: dict[str, str]) -> float:
    value = float(row["measured_value"])
    if "SUM over" in row["notes"]:
        value /= int(row["num_gpus"])  # the README summed all GPUs (see notes)
    unit = row["unit"]
    if unit in ("GB", "G"):
        # litgpt prints max_memory_allocated() / 1e9; Qwen's table writes "G" and its
        # README text says "We profile the memory (GB)". Read both as 1e9 bytes; if
        # Qwen meant GiB, its rows are 7.4% higher than used here.
        return value * 1e9 / GIB
    if unit == "GiB":
        return value
    raise ValueError(f"{row['id']}: unknown unit {unit!r}")


def to_setup(row: dict[str, str], models: dict[str, ModelSpec]) -> Case:
    model = models[row["model"]]
    targets, to_save = _targets(row)
    sharding = row["sharding"]
    num_gpus = int(row["num_gpus"])
    micro = int(row["micro_batch"])
    grad_accum = max(1, LITGPT_BATCH // micro) if row["stack"] == "litgpt" else QWEN_GRAD_ACCUM
    precision = row["precision"].replace("-true", "")
    setup = TrainSetup(
        model=model,
        method=row["method"],  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
        lora_r=int(row["lora_r"] or 16),
        lora_targets=targets,
        lora_dropout=0.05,  # both sources: lora_dropout 0.05
        lora_modules_to_save=to_save,
        sequence_len=int(row["seq_len"]),
        micro_batch_size=micro,
        gradient_checkpointing=row["grad_ckpt"] == "true",
        attn_implementation="flash_attention_2" if row["attn"] == "flash" else "sdpa",
        optimizer=_optimizer(row),
        num_gpus=num_gpus,
        distributed=sharding if sharding != "none" else "none",  # type: ignore[arg-type]
        gradient_accumulation_steps=grad_accum,
    )
    metric = "allocated" if row["metric"] == "max_allocated" else "total"
    return Case(row, setup, _stack(row), _measured_gib(row), metric)


def load_cases(csv_path: Path, models_path: Path) -> list[Case]:
    facts: dict[str, Any] = json.loads(models_path.read_text())
    models = {name: from_dev_facts(entry, name) for name, entry in facts.items()}
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [to_setup(r, models) for r in rows]


def predict(case: Case) -> float:
    est = memory.estimate(case.setup, case.stack)
    return est.allocated_gib if case.metric == "allocated" else est.total_gib


# ---------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    ap.add_argument("--worst", type=int, default=8, help="rows to list as furthest off")
    args = ap.parse_args(argv)

    cases = load_cases(args.csv, args.models)
    results: list[tuple[Case, float, float]] = []
    print(
        f"{'id':<11} {'model':<13} {'method':<6} {'setup':<34} {'metric':<9} "
        f"{'pred GiB':>8} {'meas GiB':>8} {'err %':>7}"
    )
    for c in cases:
        pred = predict(c)
        err = (pred - c.measured_gib) / c.measured_gib * 100
        results.append((c, pred, err))
        s = c.setup
        what = (
            f"s{s.sequence_len} b{s.micro_batch_size} {'gc' if s.gradient_checkpointing else 'nogc'} "
            f"{s.distributed}x{s.num_gpus} {c.stack.name}"
        )
        print(
            f"{c.row['id']:<11} {c.row['model']:<13} {s.method:<6} {what:<34} {c.metric:<9} "
            f"{pred:8.2f} {c.measured_gib:8.2f} {err:+7.1f}"
        )

    abs_err = [abs(e) for _, _, e in results]
    signed = [e for _, _, e in results]
    print()
    print(f"rows: {len(results)}")
    print(f"median |error|: {statistics.median(abs_err):.1f}%")
    print(f"mean |error|:   {statistics.fmean(abs_err):.1f}%")
    print(f"median signed:  {statistics.median(signed):+.1f}%")
    within = sum(1 for e in abs_err if e <= 15)
    print(f"within 15%:     {within}/{len(results)}")
    for stack in sorted({c.stack.name.split("-")[0] for c, _, _ in results}):
        errs = [abs(e) for c, _, e in results if c.stack.name.split("-")[0] == stack]
        print(f"  {stack:<18} median |error| {statistics.median(errs):5.1f}% over {len(errs)} rows")
    print()
    print(f"furthest off ({args.worst}):")
    for c, pred, err in sorted(results, key=lambda t: -abs(t[2]))[: args.worst]:
        print(
            f"  {c.row['id']:<11} {err:+6.1f}%  pred {pred:6.2f} vs {c.measured_gib:6.2f} GiB  "
            f"{reason_for(c.row['id'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
