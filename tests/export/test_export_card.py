"""The model card (README.md of adapter/ and merged/): base, method, data, the setup
and what the plan predicted, the measured metrics, loading and serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fake_runs import planned_record, write_planned_record

from axo_helper import __version__
from axo_helper.export.card import model_card
from axo_helper.export.source import RunInfo, load_run
from axo_helper.rundir import RunDir


def card_run(root: Path, **over: Any) -> RunInfo:
    cfg = {
        "base_model": "org/base-7b",
        "datasets": [{"path": "data/qa.jsonl", "type": "chat_template"}],
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 32,
        "lora_alpha": 64,
        "lora_target_linear": True,
        "sequence_len": 1024,
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 8,
        "learning_rate": 2e-4,
        "num_epochs": 3,
        "optimizer": "paged_adamw_8bit",
        "bf16": True,
    }
    # plan.json as `run` writes it, with the figures this test pins.
    record = planned_record(
        rows=1800,
        method="qlora",
        memory={"total_gib": 14.2},
        gpu="NVIDIA A10G 24GB",
        tokens_per_epoch=612345,
    )
    metrics = {
        "device": "NVIDIA A10G",
        "world_size": 1,
        "steps": 675,
        "peak_memory_gib": 13.37,
        "peak_memory_kind": "reserved",
        "tokens_per_s": 2345.67,
        "step_time_s": {"mean": 1.2345},
        "final_loss": 0.87654,
    }
    args = {"config": cfg, "record": record, "metrics": metrics, **over}
    return RunInfo(
        root / "qa-run",
        args["config"],
        root / "output",
        "org/base-7b",
        "qlora",
        args["record"],
        args["metrics"],
    )


def test_model_card_shows_base_method_data_metrics_and_peft_loading(tmp_path: Path) -> None:
    card = model_card(card_run(tmp_path), "adapter")
    front, body = card.split("---\n")[1:3]
    assert yaml.safe_load(front) == {
        "base_model": "org/base-7b",
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "tags": ["axolotl", "axo-helper", "qlora"],
    }
    assert body.startswith("\n# qa-run: QLoRA adapter of org/base-7b\n")
    # data summary
    assert "- `data/qa.jsonl` (type `chat_template`)\n- rows: 1800\n" in body
    assert "- tokens per epoch: 612,345\n" in body
    # the setup, including what the plan predicted
    for row in (
        "| method | QLoRA |",
        "| precision | bf16 |",
        "| sequence length | 1024 |",
        "| learning rate | 0.0002 |",
        "| LoRA rank / alpha | 32 / 64 |",
        "| LoRA targets | all linear layers |",
        "| planned for | NVIDIA A10G 24GB |",
        "| predicted peak memory | 14.2 GiB per GPU |",
    ):
        assert row + "\n" in body, row
    assert "| max steps |" not in body  # not set: the row is left out
    # measured metrics
    for row in (
        "| device | NVIDIA A10G x 1 |",
        "| steps | 675 |",
        "| peak memory | 13.37 GiB (reserved) |",
        "| throughput | 2345.7 tokens/s |",
        "| mean step time | 1.234 s |",
        "| final training loss | 0.8765 |",
    ):
        assert row + "\n" in body, row
    # loading with PEFT and serving
    assert 'AutoPeftModelForCausalLM.from_pretrained("./adapter")' in body
    assert 'AutoTokenizer.from_pretrained("./adapter")' in body
    assert (
        "vllm serve org/base-7b --enable-lora --lora-modules qa-run=./adapter --max-lora-rank 32"
        in body
    )
    assert body.endswith(f"Made by axo-helper {__version__}.\n")

    merged = model_card(card_run(tmp_path), "merged")
    assert "library_name: transformers" in merged
    assert "# qa-run: QLoRA merged model of org/base-7b" in merged
    assert "same NF4" in merged and "AutoPeft" not in merged
    assert 'AutoModelForCausalLM.from_pretrained("./merged", dtype="auto")' in merged


def test_model_card_without_plan_or_metrics_says_so(tmp_path: Path) -> None:
    card = model_card(
        card_run(tmp_path, config={"base_model": "b"}, record=None, metrics=None), "merged"
    )
    assert "## Training data\n\n- not recorded\n" in card
    assert "No metrics.json in the run directory" in card
    assert "| micro batch |" not in card and "| precision | fp32/auto |" in card


def test_a_run_directory_as_run_writes_it_gives_the_row_count(tmp_path: Path) -> None:
    """plan.json through run's own writer: rows are inputs.data_rows, not a plan key."""
    rd = RunDir(tmp_path / "qa-run")
    rd.output.mkdir(parents=True)
    rd.config.write_text(yaml.safe_dump({"base_model": "org/base-7b", "adapter": "lora"}))
    record = write_planned_record(rd.path, rows=321, method="lora")
    assert "data" not in record["plan"]  # the Plan's object has no rows of its own

    info = load_run(rd.path)
    assert info.record == record
    card = model_card(info, "adapter")
    assert "- rows: 321\n" in card
    assert f"| planned for | {record['plan']['gpu']} |" in card


def test_a_config_run_has_no_row_count(tmp_path: Path) -> None:
    record = {"source": "config", "plan": None, "inputs": {"model": "b", "data": ["d.jsonl"]}}
    card = model_card(card_run(tmp_path, config={"base_model": "b"}, record=record), "merged")
    assert "- rows:" not in card and "| planned for |" not in card
