"""The chosen plan's predicted time and memory over a fixed grid of operator scenarios.

    .venv/bin/python benchmarks/plan_choices.py [--csv OUT]
    PYTHONPATH=/path/to/older/checkout .venv/bin/python benchmarks/plan_choices.py

GPUs x models x data (10k short Q&A pairs, long chats of ~3-4k tokens, 32k-token
documents), each planned with the shipped policy and every integration the policy knows
treated as installed. Prints per scenario the method, micro batch, checkpointing, fused
cross-entropy, selective checkpointing, activation offloading, distribution, predicted GiB and minutes per epoch, so two checkouts can
be compared line by line (run it with PYTHONPATH pointing at each).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from axo_helper import hardware, model, planner  # noqa: E402
from axo_helper.errors import PlanError  # noqa: E402
from axo_helper.specs import DataSpec, TokenStats  # noqa: E402

GPUS = ("rtx3060", "rtx4090", "rtx5090", "a100-80gb", "h100-sxm", "2xrtx4090", "8xh100-sxm")
MODELS = (
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen2.5-7B",
    "Qwen/Qwen3-14B",
    "meta-llama/Llama-3.1-70B",
)


def _data(name: str, rows: int, p50: int, p95: int, p99: int, mx: int, mean: float) -> DataSpec:
    return DataSpec(
        path=f"{name}.jsonl",
        files=(f"{name}.jsonl",),
        type="completion" if name == "docs" else "alpaca",
        fields={},
        rows=rows,
        sampled_rows=rows,
        tokens=TokenStats(p50=p50, p95=p95, p99=p99, max=mx, mean=mean, total=int(rows * mean)),
        tokenizer=None,
        approximate=True,
    )


DATA = {
    "qa-10k": _data("qa", 10_000, 180, 420, 600, 900, 210.0),
    "chats-4k": _data("chats", 5_000, 2_800, 3_700, 3_950, 4_000, 2_700.0),
    "docs-32k": _data("docs", 400, 32_000, 32_700, 32_900, 33_000, 32_000.0),
}


def plan_one(gpu: str, name: str, data: DataSpec) -> dict[str, Any]:
    policy = planner.load_policy()
    kwargs: dict[str, Any] = {}
    if "installed" in inspect.signature(planner.plan).parameters:
        kwargs["installed"] = frozenset({policy.fused_ce.package})
    try:
        p = planner.plan(hardware.resolve(gpu), model.inspect(name), data, policy, **kwargs)
    except PlanError as exc:
        return {"method": "none", "why": exc.message[:60]}
    s = p.setup
    return {
        "method": p.method,
        "seq": s.sequence_len,
        "mb": s.micro_batch_size,
        "gc": "gc" if s.gradient_checkpointing else "-",
        "fce": "fce" if getattr(s, "fused_cross_entropy", False) else "-",
        "ao": "ao" if getattr(s, "activation_offloading", False) else "-",
        "sel": "sel" if getattr(s, "selective_checkpointing", False) else "-",
        "dist": s.distributed + ("+off" if s.cpu_offload else ""),
        "optim": s.optimizer,
        "gib": round(p.memory.total_gib, 1),
        "min": round(p.seconds_per_epoch / 60, 1) if p.seconds_per_epoch else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    print(f"axo_helper from {Path(planner.__file__).parents[1]}")
    for gpu in GPUS:
        for name in MODELS:
            for label, data in DATA.items():
                r = {"gpu": gpu, "model": name.split("/")[-1], "data": label, **plan_one(gpu, name, data)}
                rows.append(r)
                if r["method"] == "none":
                    print(f"{gpu:<11} {r['model']:<14} {label:<9} nothing fits")
                    continue
                print(
                    f"{gpu:<11} {r['model']:<14} {label:<9} {r['method']:<6} seq {r['seq']:>6} "
                    f"mb {r['mb']:>2} {r['gc']:<3}{r['sel']:<4}{r['fce']:<4}{r['ao']:<3}{r['dist']:<10}{r['optim']:<18}"
                    f"{r['gib']:>6} GiB {r['min'] if r['min'] is not None else '-':>8} min"
                )
    if args.csv:
        keys = sorted({k for r in rows for k in r})
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
