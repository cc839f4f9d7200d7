"""Peak memory (RSS) of merging a LoRA adapter, against the size of the model.

    python benchmarks/merge_rss.py                       # ~500M params, 100 MB shards, bf16
    python benchmarks/merge_rss.py --layers 4 --shard-size 50MB   # a quick smaller run
    python benchmarks/merge_rss.py --no-legacy           # skip the whole-model comparison

Builds a random Llama-architecture model (default ~0.5B parameters), saves it as
sharded safetensors, makes a rank-16 LoRA adapter over every linear layer with
non-zero B matrices, lays them out as a finished `axo-helper run` directory and
then, each in a fresh child process:

  export   `axo_helper.export.export_run(run, variants=["merged"])`: Axolotl's
           shard-by-shard merge, the trained tokenizer, model card, manifest with
           sha256 (what `axo-helper export` and the end of `axo-helper run` do);
  legacy   PEFT's `merge_and_unload` on the whole model + `save_pretrained` (what
           Axolotl's `merge_method: legacy` does), for comparison.

Each child reports its resident set after importing torch/transformers/axolotl
(the baseline every merge pays) and its peak (VmHWM), so the table shows what the
merge itself added, next to the model size and the largest shard. CPU only; the
GPU is never touched (CUDA_VISIBLE_DEVICES is cleared for the children).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from axo_helper.rundir import RunDir

CHILD_EXPORT = """
import json, sys
from pathlib import Path
import torch, transformers, peft                    # the imports every merge pays
from axolotl.cli.utils import lora_merge            # noqa: F401
from axo_helper.export import export_run
base = rss()
result = export_run(Path(sys.argv[1]), variants=["merged"])
print(json.dumps({"baseline": base, "peak": peak(), "verified": result.verified}))
"""

CHILD_LEGACY = """
import json, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
from axolotl.cli.utils import lora_merge            # noqa: F401  (same imports as export)
base = rss()
run = Path(sys.argv[1])
model = AutoModelForCausalLM.from_pretrained(sys.argv[2], dtype=torch.bfloat16)
model = PeftModel.from_pretrained(model, run / "output").merge_and_unload()
model.save_pretrained(run / "legacy-merged", max_shard_size="100MB")
print(json.dumps({"baseline": base, "peak": peak(), "verified": None}))
"""

PRELUDE = """
def _status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
def rss():
    return _status("VmRSS")
def peak():
    return _status("VmHWM")
"""


def build(
    root: Path,
    *,
    layers: int,
    hidden: int,
    intermediate: int,
    vocab: int,
    shard_size: str,
    rank: int,
) -> tuple[Path, Path, int]:
    """The base model and a run directory with a LoRA adapter; returns (base, run, params)."""
    import torch
    import yaml
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from axo_helper.tinymodel import build_tokenizer

    base = root / "base"
    run = root / "run"
    out = run / "output"
    out.mkdir(parents=True)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 128,
        num_key_value_heads=max(1, hidden // 512),
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.device("cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(base, max_shard_size=shard_size)
    tok = build_tokenizer()  # a real tokenizer for the run's output/ (vocab mismatch is moot here)
    tok.save_pretrained(base)
    print(
        f"built and saved the base ({params / 1e6:.0f}M params) in {time.perf_counter() - t:.0f}s",
        file=sys.stderr,
    )

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(
        model,
        LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    peft_model.save_pretrained(out)
    shutil.copy2(base / "config.json", out / "config.json")
    tok.save_pretrained(out)
    del peft_model, model
    cfg = {
        "base_model": str(base),
        "adapter": "lora",
        "lora_r": rank,
        "lora_alpha": 2 * rank,
        "bf16": True,
        "output_dir": str(out),
        "datasets": [{"path": "random", "type": "completion"}],
    }
    RunDir(run).config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return base, run, params


def measure(code: str, *args: str) -> dict[str, float]:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "AXOLOTL_DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"child failed:\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["seconds"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=1536)
    ap.add_argument("--intermediate", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--shard-size", default="100MB")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--no-legacy", action="store_true", help="skip the whole-model PEFT merge")
    ap.add_argument("--keep", type=Path, help="build here and keep the files (default: a temp dir)")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="merge-rss-"))
    try:
        base, run, params = build(
            root,
            layers=args.layers,
            hidden=args.hidden,
            intermediate=args.intermediate,
            vocab=args.vocab,
            shard_size=args.shard_size,
            rank=args.rank,
        )
        shards = sorted(base.glob("model*.safetensors"))
        model_bytes = sum(s.stat().st_size for s in shards)
        largest = max(s.stat().st_size for s in shards)
        rows = [("export (Axolotl shard-by-shard)", measure(CHILD_EXPORT, str(run)))]
        if not args.no_legacy:
            rows.append(
                ("legacy (PEFT merge_and_unload)", measure(CHILD_LEGACY, str(run), str(base)))
            )

        mb = 1e6
        print(
            f"\nmodel: {params / 1e6:.0f}M parameters, bf16, {model_bytes / mb:,.0f} MB in "
            f"{len(shards)} shards (largest {largest / mb:,.0f} MB); LoRA r={args.rank} on all linears"
        )
        print(
            f"{'merge':34} {'baseline':>9} {'peak':>9} {'added':>9} {'added/model':>12} "
            f"{'added/shard':>12} {'time':>7}"
        )
        for name, r in rows:
            added = r["peak"] - r["baseline"]
            print(
                f"{name:34} {r['baseline'] / mb:8,.0f}M {r['peak'] / mb:8,.0f}M {added / mb:8,.0f}M "
                f"{added / model_bytes:12.2f} {added / largest:12.2f} {r['seconds']:6.0f}s"
            )
        print(
            "baseline = RSS after importing torch/transformers/peft/axolotl; "
            "added = peak RSS - baseline (MB = 10^6 bytes)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
