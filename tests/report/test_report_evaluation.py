"""Base against fine-tuned on the held-out rows, with the tiny model on CPU.

The run is fake_runs.make_run's (a LoRA whose B matrices are not zero, the trained
tokenizer in output/), its prepared dataset the tiny tokenizer's chat rows with the
prompt masked as Axolotl masks it. The loss is checked against transformers' own
loss of each row, so the batching, padding and shifting here cannot drift from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_runs import make_run
from report_runs import (
    QA,
    documented_keys,
    keys_under,
    record_metrics,
    tokenized_rows,
    write_prepared,
)

from axo_helper.report import EvalOptions, ReportOptions, build_report
from axo_helper.rundir import RunDir

pytest.importorskip("transformers", reason="needs the [train] extra")
pytest.importorskip("peft", reason="needs the [train] extra")

HELD = 2  # val_set_size: the last two QA rows are held out


def lora_run(tmp_path: Path, base: Path) -> RunDir:
    from transformers import AutoTokenizer

    run = RunDir(make_run(tmp_path, base, method="lora"))
    cfg = yaml.safe_load(run.config.read_text())
    cfg.update(val_set_size=HELD, seed=42, eot_tokens=["<|im_end|>"])
    run.config.write_text(yaml.safe_dump(cfg))
    write_prepared(run, tokenized_rows(AutoTokenizer.from_pretrained(run.output), QA))
    record_metrics(run, [3.0, 2.0, 1.5])
    return run


def hf_loss(
    model_dir: Path, rows: list[dict[str, list[int]]], adapter: Path | None = None
) -> float:
    """transformers' mean loss of each row, weighted by its trained tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([row["labels"]])
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def evaluate(run: RunDir, **options: Any) -> dict[str, Any]:
    return build_report(run.path, ReportOptions(eval=EvalOptions(progress=False, **options)))


def test_both_models_are_scored_on_the_held_out_rows_as_transformers_scores_them(
    tmp_path: Path, tiny_model: Path
) -> None:
    from transformers import AutoTokenizer

    run = lora_run(tmp_path, tiny_model)
    report = evaluate(run, samples=5)
    ev = report["evaluation"]
    assert ev["status"] == "ok", ev
    held = tokenized_rows(AutoTokenizer.from_pretrained(run.output), QA)[-HELD:]
    assert ev["split"]["rows"] == ev["split"]["rows_scored"] == HELD
    assert ev["base"]["loss"] == pytest.approx(hf_loss(tiny_model, held), rel=1e-4)
    assert ev["fine_tuned"]["loss"] == pytest.approx(
        hf_loss(tiny_model, held, adapter=run.output), rel=1e-4
    )
    assert ev["fine_tuned"]["loss"] != pytest.approx(ev["base"]["loss"], rel=1e-3)
    assert ev["device"] == "cpu" and ev["fine_tuned"]["model"].endswith("(base + output)")
    # The answer table: every held-out row, its reference the data's answer.
    assert [s["reference"] for s in report["samples"]] == [a for _, a in QA[-HELD:]]
    assert all(QA[-HELD + i][0] in s["prompt"] for i, s in enumerate(report["samples"]))


def test_evaluation_and_sample_keys_are_the_documented_ones(
    tmp_path: Path, tiny_model: Path
) -> None:
    report = evaluate(lora_run(tmp_path, tiny_model), samples=1)
    docs, ev = documented_keys(), report["evaluation"]
    assert set(ev) == keys_under(docs, "evaluation")
    assert set(ev["split"]) == docs["evaluation.split"]
    assert set(ev["base"]) == set(ev["fine_tuned"]) == docs["evaluation.base"]
    assert set(report["samples"][0]) == keys_under(docs, "samples")


def test_the_merged_model_is_the_one_scored_when_exported(tmp_path: Path, tiny_model: Path) -> None:
    run = lora_run(tmp_path, tiny_model)
    shutil.copytree(tiny_model, run.merged)  # "merged" = the base weights unchanged
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (run.output / name).is_file():
            shutil.copy2(run.output / name, run.merged / name)
    ev = evaluate(run)["evaluation"]
    assert ev["fine_tuned"]["model"] == f"{run.merged} (merged)"
    assert ev["fine_tuned"]["loss"] == pytest.approx(ev["base"]["loss"], rel=1e-6)


def test_batching_and_padding_do_not_change_the_loss(tmp_path: Path, tiny_model: Path) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from axo_helper.report.scoring import held_out_loss

    rows = tokenized_rows(AutoTokenizer.from_pretrained(tiny_model), QA)
    dataset = Dataset.from_list(rows)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    one = held_out_loss(model, dataset, rows=len(rows), size=1, pad_id=0, label="x", progress=False)
    four = held_out_loss(
        model, dataset, rows=len(rows), size=4, pad_id=0, label="x", progress=False
    )
    assert one[1] == four[1] == sum(sum(1 for v in r["labels"][1:] if v != -100) for r in rows)
    assert four[0] == pytest.approx(one[0], rel=1e-5)
    assert four[0] == pytest.approx(hf_loss(tiny_model, rows), rel=1e-4)


def test_cpu_refuses_a_model_over_the_size_limit(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from axo_helper.report import models

    run = lora_run(tmp_path, tiny_model)
    monkeypatch.setattr(models, "CPU_MAX_PARAMS", 1000)  # the tiny model is ~0.1M
    report = evaluate(run)
    ev = report["evaluation"]
    assert ev["status"] == "missing" and "refused on CPU" in ev["reason"]
    assert "GPU" in ev["reason"] and "--no-eval" in ev["reason"]
    assert report["samples"] == [] and any("refused on CPU" in m for m in report["missing"])


def test_max_rows_caps_the_rows_scored(tmp_path: Path, tiny_model: Path) -> None:
    run = lora_run(tmp_path, tiny_model)
    ev = evaluate(run, max_rows=1, samples=0)["evaluation"]
    assert ev["split"]["rows"] == HELD and ev["split"]["rows_scored"] == 1


def test_a_run_without_trained_weights_has_no_evaluation(tmp_path: Path, tiny_model: Path) -> None:
    run = lora_run(tmp_path, tiny_model)
    for child in run.output.glob("adapter_model.*"):
        child.unlink()
    ev = evaluate(run)["evaluation"]
    assert ev["status"] == "missing" and "no fine-tuned model" in ev["reason"]
