"""benchmarks/gpu_measure.py: the GPU memory harness, kept working on CPU.

The fast tests check the grid, the CSV and the summary without torch. The slow ones run
real cases in child processes on a tiny Llama (RSS instead of CUDA memory), and check
that the harness sets the model up exactly as Axolotl 0.19's ModelLoader does.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))  # benchmarks/ is a folder of scripts, not a package

import gpu_measure as gm  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_AXOLOTL = importlib.util.find_spec("axolotl") is not None


# --------------------------------------------------------------------------- grids
def test_h100_grid_covers_what_the_issue_asks() -> None:
    cases = gm.GRIDS["h100"]()
    assert len(cases) >= 12
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids)

    def have(model: str, **kw: Any) -> list[gm.Case]:
        return [
            c for c in cases if c.model == model and all(getattr(c, k) == v for k, v in kw.items())
        ]

    assert have(gm.QWEN_05B, method="full") and have(gm.QWEN_05B, method="lora")
    llama = have(gm.LLAMA_8B)
    for method in ("lora", "qlora"):
        runs = [c for c in llama if c.method == method]
        assert len({c.sequence_len for c in runs}) >= 2
        assert len({c.micro_batch_size for c in runs}) >= 2
        assert {c.gradient_checkpointing for c in runs} == {True, False}
    assert {c.optimizer for c in cases} >= {
        "adamw_torch_fused",
        "adamw_bnb_8bit",
        "paged_adamw_8bit",
    }
    assert {c.attn_implementation for c in cases} >= {"sdpa", "eager", "flash_attention_2"}
    # A 150k-vocabulary 7B model, from the shipped presets.
    arch = gm.resolve_arch(gm.QWEN_7B)
    assert arch.hf_config["vocab_size"] >= 150_000
    assert have(gm.QWEN_7B, method="qlora")


@pytest.mark.parametrize("grid", sorted(gm.GRIDS))
def test_every_grid_resolves_and_has_unique_ids(grid: str) -> None:
    cases = gm.GRIDS[grid]()
    assert len({c.id for c in cases}) == len(cases)
    for model in {c.model for c in cases}:
        arch = gm.resolve_arch(model)
        assert arch.hf_config["model_type"]
        assert arch.hf_config["vocab_size"] > 0


def test_select_by_glob_keeps_grid_order() -> None:
    cases = gm.GRIDS["h100"]()
    picked = gm.select(cases, ["llama-3.1-8b/qlora/*", "*eager*"])
    assert picked and all("qlora" in c.id or "eager" in c.id for c in picked)
    assert [c.id for c in picked] == [c.id for c in cases if c in picked]
    assert gm.select(cases, []) == cases


def test_skip_reasons_are_decided_without_torch() -> None:
    flash = gm.Case("tiny-llama", "lora", 128, 1, attn_implementation="flash_attention_2")
    assert "needs CUDA" in gm.skip_reason(flash, "cpu")
    assert gm.skip_reason(gm.Case("tiny-llama", "lora", 128, 1), "cpu") == ""


def test_cases_file_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(
        json.dumps(
            [
                {
                    "model": "tiny-llama",
                    "method": "lora",
                    "sequence_len": 8,
                    "micro_batch_size": 1,
                    "seq": 3,
                }
            ]
        )
    )
    with pytest.raises(ValueError, match="seq"):
        gm.load_cases_file(path)


def test_cli_list_prints_case_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert gm.main(["--grid", "h100", "--cases", "*qwen2.5-7b*", "--list"]) == 0
    out = capsys.readouterr().out.split()
    assert out and all(i.startswith("qwen2.5-7b/") for i in out)


# --------------------------------------------------------------------------- rows, summary
def _row(case_id: str, status: str, measured: float | None, pred: float | None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(gm.COLUMNS, "")
    row.update(case_id=case_id, status=status, device="cuda", gpu_total_gib=79.2)
    if measured is not None:
        row["measured_gib"], row["measured_what"] = measured, "nvml_process"
    gm._apply_prediction(row, {"pred_total_gib": pred} if pred is not None else {})
    return row


def test_summary_reports_median_and_worst_under_prediction() -> None:
    rows = [
        _row("a", "ok", 10.0, 11.0),  # +10%
        _row("b", "ok", 10.0, 8.0),  # -20%
        _row("c", "ok", 20.0, 21.0),  # +5%
        _row("d", "oom", None, 40.0),  # predicted to fit 79.2 GiB, yet OOM
        _row("e", "skipped", None, None),
    ]
    assert rows[1]["error_pct"] == -20.0 and rows[1]["error_gib"] == -2.0
    text = gm.summarize(rows)
    assert "median |error| 10.0%" in text
    assert "worst under-prediction: -20.0% (b)" in text
    assert "worst over-prediction: +10.0% (a)" in text
    assert "oom d: predicted 40.0 GiB of 79.2 GiB (UNDER-PREDICTED)" in text


def test_csv_rows_have_every_column_and_read_back(tmp_path: Path) -> None:
    case = gm.Case("tiny-llama", "lora", 128, 2)
    arch = gm.resolve_arch("tiny-llama")
    result = {
        "status": "ok",
        "rss_before_model_gib": 0.5,
        "rss_peak_train_gib": 0.75,
        "tokens_per_s": 100.0,
        "unknown_key": 1,
    }
    row = gm.make_row(case, arch, "cpu", (1, 3), result, {"pred_total_gib": 0.5})
    assert row["measured_gib"] == 0.25 and row["measured_what"] == "cpu_rss_delta"
    assert row["error_pct"] == 100.0
    sink = gm.CsvSink(tmp_path / "r.csv")
    sink.write(row)
    with (tmp_path / "r.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == gm.COLUMNS
        (back,) = list(reader)
    assert gm.case_from_row(back) == case


def test_repredict_recomputes_predictions_of_a_measured_csv(tmp_path: Path) -> None:
    case = gm.Case("tiny-llama", "full", 128, 2, gradient_checkpointing=False)
    row = gm.make_row(
        case,
        gm.resolve_arch("tiny-llama"),
        "cuda",
        (1, 3),
        {"status": "ok", "nvml_process_gib": 1.5, "peak_reserved_gib": 0.9},
        {},
    )
    assert row["context_gib"] == 0.6
    src = tmp_path / "measured.csv"
    gm.CsvSink(src).write(row)
    out = tmp_path / "again.csv"
    rows = gm.repredict(src, out)
    assert out.is_file() and len(rows) == 1
    assert rows[0]["measured_gib"] == "1.5"  # the measurement is kept as measured
    if importlib.util.find_spec("axo_helper.memory") is not None:
        assert float(rows[0]["pred_total_gib"]) > 0
        assert rows[0]["error_pct"] != ""


# --------------------------------------------------------------------------- child failures
def test_crash_error_and_hang_are_recorded_not_raised(tmp_path: Path) -> None:
    # These faults fire before the child imports torch: a few seconds in all.
    quick = [
        gm.Case("tiny-llama", "lora", 128, 1, fault="crash"),
        gm.Case("tiny-llama", "lora", 128, 1, fault="error"),
    ]
    out = tmp_path / "faults.csv"
    rows = gm.measure(quick, device="cpu", out=out, timeout_s=60, budget_s=0, echo=lambda s: None)
    hang = [gm.Case("tiny-llama", "lora", 128, 1, fault="hang")]
    rows += gm.measure(
        hang, device="cpu", out=tmp_path / "hang.csv", timeout_s=2, budget_s=0, echo=lambda s: None
    )
    by_fault = {r["case_id"].rsplit("fault-", 1)[1]: r for r in rows}
    assert by_fault["crash"]["status"] == "error"
    assert "exited 7" in by_fault["crash"]["reason"]
    assert by_fault["error"]["status"] == "error"
    assert "RuntimeError: injected" in by_fault["error"]["reason"]
    assert by_fault["hang"]["status"] == "timeout"
    assert by_fault["hang"]["failed_in"] == "start"
    with out.open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    assert out.with_suffix(".log").is_file()


def test_budget_skips_cases_instead_of_overrunning(tmp_path: Path) -> None:
    cases = [gm.Case("tiny-llama", "lora", 128, 1, fault="error")] * 2
    rows = gm.measure(
        cases,
        device="cpu",
        out=tmp_path / "b.csv",
        timeout_s=60,
        budget_s=0.001,
        echo=lambda s: None,
    )
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert "time budget" in rows[0]["reason"]


# --------------------------------------------------------------------------- real CPU runs
@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch (the [train] extra)")
def test_cpu_grid_measures_real_numbers_and_records_an_oom(tmp_path: Path) -> None:
    cases = [
        {"model": "tiny-llama", "method": "lora", "sequence_len": 128, "micro_batch_size": 2},
        {"model": "tiny-llama", "method": "full", "sequence_len": 128, "micro_batch_size": 2},
        # An OOM raised in the training phase: a row with status oom, not a crash.
        {
            "model": "tiny-llama",
            "method": "lora",
            "sequence_len": 128,
            "micro_batch_size": 2,
            "fault": "oom",
        },
    ]
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases))
    out = tmp_path / "cpu.csv"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "gpu_measure.py"),
            "--cases-file",
            str(cases_file),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--timeout-s",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == gm.COLUMNS
        rows = {r["method"] + ("-oom" if "fault" in r["case_id"] else ""): r for r in reader}
    for method in ("lora", "full"):
        r = rows[method]
        assert r["status"] == "ok", r["reason"]
        assert r["measured_what"] == "cpu_rss_delta"
        assert float(r["measured_gib"]) > 0
        assert float(r["rss_peak_train_gib"]) > float(r["rss_before_model_gib"]) > 0
        assert float(r["step_time_s"]) > 0 and float(r["tokens_per_s"]) > 0
        assert int(r["steps_done"]) == 4
        assert math.isfinite(float(r["loss_last"]))
        assert r["torch_version"] and r["transformers_version"] and r["peft_version"]
        assert "Axolotl 0.19" in r["stack"]
    # LoRA r=16 on all 7 linears of 2 layers; a full fine-tune trains everything.
    assert int(rows["lora"]["trainable_params"]) == 2 * 16 * (
        (64 + 64) * 2 + (64 + 32) * 2 + (64 + 128) * 3
    )
    assert int(rows["full"]["trainable_params"]) > int(rows["lora"]["trainable_params"])
    oom = rows["lora-oom"]
    assert oom["status"] == "oom" and oom["failed_in"] == "train"
    assert "injected" in oom["reason"]
    summary = out.with_suffix(".summary.txt").read_text()
    assert "CPU run" in summary and "tiny-llama/lora" in summary


_AXOLOTL_COMPARE = textwrap.dedent(
    """
    import json, sys, torch
    from pathlib import Path
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    from axo_helper.tinymodel import build_tiny_model
    from axolotl.loaders import ModelLoader, load_tokenizer
    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault
    import _measure_case as mc

    model_dir = build_tiny_model(Path(sys.argv[3]) / "tiny")
    hf_config = json.loads((model_dir / "config.json").read_text())
    table = lambda m: {n: [str(p.dtype), p.requires_grad, list(p.shape), type(p).__name__]
                       for n, p in m.named_parameters()}
    out = {}
    for method in ("full", "lora", "qlora"):
        raw = {"base_model": str(model_dir), "output_dir": sys.argv[3] + "/out",
               "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "sequence_len": 128,
               "micro_batch_size": 2, "num_epochs": 1, "learning_rate": 1e-4, "bf16": True,
               "gradient_checkpointing": True,
               "gradient_checkpointing_kwargs": {"use_reentrant": False},
               "attn_implementation": "sdpa", "optimizer": "adamw_torch_fused"}
        if method != "full":
            raw.update(adapter=method, lora_r=8, lora_alpha=16, lora_dropout=0.05,
                       lora_target_linear=True, load_in_4bit=method == "qlora")
        cfg = validate_config(DictDefault(raw))
        normalize_config(cfg)
        theirs, _ = ModelLoader(cfg, load_tokenizer(cfg)).load()
        case = {"method": method, "attn_implementation": "sdpa", "hf_config": hf_config,
                "gradient_checkpointing": True, "use_reentrant": False, "sequence_len": 128,
                "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05}
        ours = mc.axolotl_setup(mc.build_model(case, "cpu", torch.bfloat16), case, torch.bfloat16)
        out[method] = {"axolotl": table(theirs), "harness": table(ours),
                       "gc": [theirs.is_gradient_checkpointing, ours.is_gradient_checkpointing]}
    print("RESULT" + json.dumps(out))
    """
)


@pytest.mark.slow
@pytest.mark.axolotl
@pytest.mark.skipif(not HAS_AXOLOTL, reason="needs Axolotl (the [train] extra)")
def test_harness_sets_up_the_model_exactly_as_axolotl_does(tmp_path: Path) -> None:
    """Every parameter's dtype, trainability, shape and class equals real Axolotl's."""
    script = tmp_path / "compare.py"
    script.write_text(_AXOLOTL_COMPARE)
    proc = subprocess.run(
        [sys.executable, str(script), str(ROOT), str(BENCH), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "AXOLOTL_DO_NOT_TRACK": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    result = json.loads(line[len("RESULT") :])
    for method, tables in result.items():
        assert tables["axolotl"] == tables["harness"], method
        assert tables["gc"][0] == tables["gc"][1], method
    # What that pins down, in numbers the memory model relies on:
    full = result["full"]["harness"]
    assert full["model.embed_tokens.weight"][0] == "torch.float32"  # sdpa full FT: fp32 embeddings
    assert full["model.layers.0.self_attn.q_proj.weight"][0] == "torch.bfloat16"
    qlora = result["qlora"]["harness"]
    assert (
        qlora["base_model.model.lm_head.weight"][0] == "torch.bfloat16"
    )  # cast back after k-bit prep
    assert (
        qlora["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"][3]
        == "Params4bit"
    )
