#!/usr/bin/env python
"""Record `plan --json`, `render` and `validate` output on a fixed grid of cases.

For refactors that must keep behaviour: run it before (from a checkout of the old
commit) and after, into two folders, then `diff -r`. Each case's stdout, stderr and
exit code go to one file. Input data is generated deterministically under DATA_DIR,
so both runs see the same paths.

    python scripts/golden_outputs.py OUT_DIR [--data-dir /tmp/axo-golden-data] [--axolotl]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

GPUS = ("rtx4090", "t4", "a100-80gb", "rtx3060", "2xrtx4090", "8xh100", "48GB")
MODELS = (
    "meta-llama/Llama-3.1-8B",
    "Qwen/Qwen2.5-7B",
    "google/gemma-2-9b",
    "mistralai/Mixtral-8x7B-v0.1",
    "microsoft/phi-4",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-70B",
    "Qwen/Qwen3-30B-A3B",
)
METHODS = (None, "lora", "qlora", "full")


def write_data(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    alpaca = root / "qa.jsonl"
    chats = root / "chats.jsonl"
    docs = root / "docs.jsonl"
    with alpaca.open("w") as fh:
        for i in range(300):
            row = {
                "instruction": f"Question {i}: " + "why " * (i % 40),
                "input": "",
                "output": "Because " + "reasons " * (10 + i % 90),
            }
            fh.write(json.dumps(row) + "\n")
    with chats.open("w") as fh:
        for i in range(200):
            msgs = [{"role": "system", "content": "You are helpful."}]
            for t in range(1 + i % 4):
                msgs.append({"role": "user", "content": "tell me " * (20 + 15 * t)})
                msgs.append({"role": "assistant", "content": "sure " * (150 + 37 * (i % 9))})
            fh.write(json.dumps({"messages": msgs}) + "\n")
    with docs.open("w") as fh:
        for i in range(80):
            fh.write(json.dumps({"text": "word " * (500 + 97 * i)}) + "\n")
    return {"qa": alpaca, "chats": chats, "docs": docs}


def cases(data: dict[str, Path]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for gpu in GPUS:
        for model in MODELS:
            for method in METHODS:
                for kind in ("qa", "chats", "docs"):
                    if method is not None and kind != "qa":
                        continue
                    args = [
                        "--gpu",
                        gpu,
                        "--model",
                        model,
                        "--data",
                        str(data[kind]),
                        "--no-calibration",
                    ]
                    if method:
                        args += ["--method", method]
                    name = f"{gpu}__{model.replace('/', '_')}__{method or 'auto'}__{kind}"
                    out.append((f"plan__{name}", ["plan", *args, "--json"]))
                    if gpu in ("rtx4090", "2xrtx4090", "a100-80gb") or method is None:
                        target = data["qa"].parent / "rendered" / f"{name}.yml"
                        out.append(
                            (f"render__{name}", ["render", *args, "-o", str(target), "--force"])
                        )
    extra = [
        (
            "plan__text_rtx4090_llama8b",
            [
                "plan",
                "--gpu",
                "rtx4090",
                "--model",
                "meta-llama/Llama-3.1-8B",
                "--data",
                str(data["qa"]),
                "--no-calibration",
            ],
        ),
        (
            "plan__seq_micro",
            [
                "plan",
                "--gpu",
                "a100-80gb",
                "--model",
                "Qwen/Qwen2.5-7B",
                "--seq-len",
                "4096",
                "--micro-batch",
                "4",
                "--json",
                "--no-calibration",
            ],
        ),
        (
            "plan__nodata",
            ["plan", "--gpu", "h100", "--model", "Qwen/Qwen2.5-7B", "--json", "--no-calibration"],
        ),
        (
            "plan__zero3",
            [
                "plan",
                "--gpu",
                "2xrtx4090",
                "--model",
                "Qwen/Qwen2.5-7B",
                "--distributed",
                "zero3",
                "--json",
                "--no-calibration",
            ],
        ),
        (
            "plan__nofit",
            ["plan", "--gpu", "8GB", "--model", "meta-llama/Llama-3.1-70B", "--no-calibration"],
        ),
        (
            "plan__cpu",
            [
                "plan",
                "--gpu",
                "cpu",
                "--model",
                "HuggingFaceTB/SmolLM2-135M",
                "--json",
                "--no-calibration",
            ],
        ),
    ]
    return out + extra


def validate_cases(rendered: Path, axolotl: bool) -> list[tuple[str, list[str]]]:
    out = []
    for f in sorted(rendered.glob("*.yml")):
        for gpu in ("rtx4090", "t4", "2xa100-80gb"):
            args = ["validate", str(f), "--gpu", gpu]
            if not axolotl:
                args.append("--no-axolotl")
            out.append((f"validate__{f.stem}__{gpu}", args))
            out.append((f"validate__{f.stem}__{gpu}__json", [*args, "--json"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--data-dir", default="/tmp/axo-golden-data")
    ap.add_argument("--axolotl", action="store_true", help="validate with Axolotl too")
    ns = ap.parse_args()
    os.environ.setdefault("AXO_HELPER_HOME", str(Path(ns.data_dir) / "home"))
    os.environ["NO_COLOR"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from click.testing import CliRunner

    from axo_helper.cli import cli

    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    data = write_data(Path(ns.data_dir))
    rendered = Path(ns.data_dir) / "rendered"
    if rendered.exists():
        shutil.rmtree(rendered)
    rendered.mkdir()
    runner = CliRunner()

    def record(name: str, args: list[str]) -> None:
        res = runner.invoke(cli, args, prog_name="axo-helper")
        text = f"$ axo-helper {' '.join(args)}\nexit: {res.exit_code}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
        for line in res.stdout.splitlines():  # render's "wrote PATH" lines
            if line.startswith("wrote "):
                f = Path(line[len("wrote ") :])
                text += f"\n--- {f.name}\n{f.read_text()}"
        (out / f"{name}.txt").write_text(text)

    all_cases = cases(data)
    for name, args in all_cases:
        record(name, args)
    picked = sorted(rendered.glob("*.yml"))[::7]
    keep = {p.name for p in picked}
    for p in rendered.glob("*.yml"):
        if p.name not in keep:
            p.unlink()
    vcases = validate_cases(rendered, ns.axolotl)
    for name, args in vcases:
        record(name, args)
    print(f"{len(all_cases) + len(vcases)} cases written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
