"""`axo-helper plan` through the real CLI: JSON keys, human output, exit codes, imports."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

LLAMA8 = "meta-llama/Llama-3.1-8B"

# The keys docs/plan.md promises to keep stable.
STABLE_KEYS = {
    "method",
    "precision",
    "attn_implementation",
    "sequence_len",
    "sample_packing",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "gradient_checkpointing",
    "optimizer",
    "num_gpus",
    "distributed",
    "trainable_params",
    "memory",
    "rejected",
    "warnings",
}
MEMORY_KEYS = {
    "weights_gib",
    "trainable_state_gib",
    "activations_gib",
    "logits_gib",
    "overhead_gib",
    "total_gib",
    "budget_gib",
}


@pytest.fixture(scope="module")
def qa_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 alpaca-style Q&A pairs of realistic, varied length."""
    rng = random.Random(7)
    words = [
        "the",
        "a",
        "GPU",
        "model",
        "memory",
        "train",
        "batch",
        "token",
        "layer",
        "adapter",
        "data",
        "answer",
        "question",
    ]
    path = tmp_path_factory.mktemp("data") / "qa.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(10_000):
            q = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
            a = " ".join(rng.choice(words) for _ in range(rng.randint(10, 250)))
            fh.write(json.dumps({"instruction": f"Q{i}: {q}?", "input": "", "output": a}) + "\n")
    return path


def test_json_has_the_stable_keys(cli: Callable[..., Result], qa_jsonl: Path) -> None:
    r = cli("plan", "--gpu", "rtx4090", "--model", LLAMA8, "--data", str(qa_jsonl), "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj.keys() >= STABLE_KEYS
    assert obj["memory"].keys() >= MEMORY_KEYS
    assert obj["method"] in ("lora", "qlora")
    assert obj["precision"] == "bf16" and obj["attn_implementation"] == "flash_attention_2"
    assert obj["distributed"] == "none" and obj["num_gpus"] == 1
    assert obj["memory"]["total_gib"] <= obj["memory"]["budget_gib"] < 24
    assert obj["trainable_params"] > 0 and obj["adapter_size_mb"] > 1
    assert obj["steps_per_epoch"] > 0 and obj["seconds_per_epoch"] > 0
    assert obj["sequence_len"] % 256 == 0
    assert isinstance(obj["warnings"], list)
    assert any("approximate" in w for w in obj["warnings"])  # no local tokenizer
    for rej in obj["rejected"]:
        assert set(rej) == {"method", "total_gib", "reason"} and rej["reason"]
    assert set(obj["reasons"]) >= {"method", "micro_batch_size", "gradient_checkpointing"}


def test_human_summary_shows_the_reasoning(cli: Callable[..., Result], qa_jsonl: Path) -> None:
    r = cli("plan", "--gpu", "rtx4090", "--model", LLAMA8, "--data", str(qa_jsonl))
    assert r.exit_code == 0, r.output
    out = r.stdout
    for text in (
        "method",
        "lora",
        "bf16",
        "flash_attention_2",
        "micro x",
        "accumulation",
        "gradient checkpointing",
        "adapter ~",
        "MB on disk",
        "budget",
        "rejected",
        "full",
        "steps per epoch",
        "per epoch (",
        "TFLOP/s",
        "assumed utilisation",
    ):
        assert text in out, text
    assert "warning: token counts are approximate" in r.stderr
    assert "warning" not in out  # diagnostics go to stderr only


def test_full_8b_on_8xh100_json(cli: Callable[..., Result]) -> None:
    r = cli("plan", "--gpu", "8xh100", "--model", LLAMA8, "--method", "full", "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["method"] == "full" and obj["num_gpus"] == 8
    assert obj["memory"]["total_gib"] <= obj["memory"]["budget_gib"]
    assert obj["distributed"] == "zero2"  # a weight replica fits; the Adam states do not
    assert obj["distributed"] in obj["reasons"]["distributed"]


def test_nothing_fits_exits_1_with_one_message(cli: Callable[..., Result]) -> None:
    r = cli("plan", "--gpu", "8GB", "--model", "meta-llama/Llama-3.1-70B")
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: nothing fits in 7.0 GiB per GPU")
    assert lines[1].startswith("  hint: smallest changes that fit: a GPU with >=")
    assert len(lines) == 2 and "Traceback" not in r.output
    assert r.stdout == ""


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--gpu", "rtx9999", "--model", LLAMA8], 2, "rtx"),
        (["--gpu", "24ZB", "--model", LLAMA8], 2, "24ZB"),
        (["--gpu", "0GB", "--model", LLAMA8], 2, "0GB"),
        (["--gpu", "rtx4090", "--model", LLAMA8, "--method", "bogus"], 2, "bogus"),
        (["--gpu", "rtx4090", "--model", LLAMA8, "--seq-len", "0"], 2, "--seq-len"),
        (["--gpu", "rtx4090", "--model", LLAMA8, "--distributed", "zero3"], 2, "several GPUs"),
        (["--gpu", "rtx4090", "--model", LLAMA8, "--seq-len", "999999"], 2, "positions"),
        (
            ["--gpu", "rtx4090", "--model", LLAMA8, "--data", "/no/such/file.jsonl"],
            2,
            "does not exist",
        ),
        (["--gpu", "rtx4090"], 2, "--model"),
    ],
)
def test_bad_input_gives_a_documented_exit_code(
    cli: Callable[..., Result], args: list[str], code: int, text: str
) -> None:
    r = cli("plan", *args)
    assert r.exit_code == code, r.output
    assert text in r.stderr
    assert "Traceback" not in r.output


def test_overrides_reach_the_plan(cli: Callable[..., Result]) -> None:
    r = cli(
        "plan",
        "--gpu",
        "a100-80gb",
        "--model",
        "Qwen/Qwen2.5-0.5B",
        "--method",
        "lora",
        "--seq-len",
        "1024",
        "--micro-batch",
        "2",
        "--epochs",
        "1",
        "--json",
    )
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert (obj["method"], obj["sequence_len"], obj["micro_batch_size"], obj["num_epochs"]) == (
        "lora",
        1024,
        2,
        1,
    )
    # No data: full 1,024-token sequences; 2 x 16 of them make the 32k-token step.
    assert obj["gradient_accumulation_steps"] == 16


def test_nodes_multiply_the_gpus(cli: Callable[..., Result]) -> None:
    r = cli("plan", "--gpu", "8xh100", "--nodes", "2", "--model", LLAMA8, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["num_gpus"] == 16


_PROBE = """
import json, sys
from axo_helper.cli import main
code = None
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = ("torch", "transformers", "axolotl", "peft", "jinja2", "jsonschema", "rich",
         "huggingface_hub", "tokenizers")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}),
      file=sys.stderr)
"""


def test_plan_path_imports_no_torch_transformers_or_axolotl(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AXO_HELPER_HOME": str(tmp_path), "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "plan", "--gpu", "rtx4090", "--model", LLAMA8, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), proc.stderr
    json.loads(proc.stdout)  # the plan itself came out
    assert report["loaded"] == [], f"imported on the plan --json path: {report['loaded']}"
