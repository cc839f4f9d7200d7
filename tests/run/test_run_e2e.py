"""`axo-helper run` end to end: real Axolotl on CPU with the tiny local model.

Slow (each Axolotl process spends ~10 s importing), so few and small: 3 steps each.
The OOM path adds the test-only plugin tests/oom_plugin.py to the config: the first
attempt raises a real torch.OutOfMemoryError inside Axolotl's trainer, nothing in
axo-helper's launcher is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from axo_helper.tinymodel import demo_data_path

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("axolotl", reason="needs the [train] extra")

QA = str(demo_data_path("qa.jsonl"))


def axo(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "axo_helper", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=900,
    )


def record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "plan.json").read_text())


def test_lora_run_recovers_from_oom_with_the_same_effective_batch(
    tiny_model: Path, tmp_path: Path
) -> None:
    # Imported here, not at collection: it imports transformers (and torch).
    import oom_plugin

    # A planned config with the test-only OOM plugin added, run as --config.
    gen = tmp_path / "gen"
    dry = axo(
        "run", "--gpu", "cpu", "--model", str(tiny_model), "--data", QA, "--micro-batch", "4",
        "-o", str(gen), "--dry-run",
        cwd=tmp_path,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-3000:]
    config = gen / "axolotl.yml"
    ours = "plugins: [axo_helper.plugin.AxoHelperPlugin]"
    assert ours in config.read_text()
    config.write_text(
        config.read_text().replace(
            ours, f"plugins: [axo_helper.plugin.AxoHelperPlugin, {oom_plugin.PLUGIN}]"
        )
    )

    run_dir = tmp_path / "lora"
    # The "GPU" fits micro batches of 2 or less: attempt 1 (micro batch 4) dies at step 2.
    proc = axo(
        "run", "--config", str(config), "--gpu", "cpu", "--max-steps", "3", "-o", str(run_dir),
        "--json",
        env=oom_plugin.oom_env(at_step=2, above_micro_batch=2), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "finished"

    # the run directory layout of docs/run.md
    for name in ("plan.json", "axolotl.yml", "train.log", "metrics.jsonl", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "output" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter").is_dir() and (run_dir / "merged").is_dir()  # the export step

    rec = record(run_dir)
    assert rec["status"] == "finished" and rec["source"] == "config"
    assert rec["config_source"] == str(config.resolve())
    first, second = rec["attempts"]
    assert (first["outcome"], first["micro_batch_size"], first["gradient_accumulation_steps"]) == (
        "oom",
        4,
        4,
    )
    assert "CUDA out of memory" in first["reason"]
    assert (
        second["outcome"],
        second["micro_batch_size"],
        second["gradient_accumulation_steps"],
    ) == (
        "finished",
        2,
        8,
    )
    assert first["effective_batch_per_gpu"] == second["effective_batch_per_gpu"] == 16
    assert second["resumed_from"] and Path(second["resumed_from"]).name == "checkpoint-1"

    cfg_text = (run_dir / "axolotl.yml").read_text()
    cfg = yaml.safe_load(cfg_text)
    assert cfg["adapter"] == "lora"
    assert oom_plugin.PLUGIN in cfg["plugins"]
    assert (cfg["micro_batch_size"], cfg["gradient_accumulation_steps"]) == (2, 8)
    assert "lowered by axo-helper after CUDA OOM" in cfg_text
    log = (run_dir / "train.log").read_text()
    assert "CUDA out of memory" in log and "=== axo-helper training, attempt 2" in log
    state = json.loads((run_dir / "output" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert "CUDA out of memory (attempt 1); retrying with micro_batch_size 4 -> 2" in proc.stderr


def test_full_finetune_run_then_resume(tiny_model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "full"
    proc = axo(
        "run", "--gpu", "cpu", "--model", str(tiny_model), "--data", QA, "--method", "full",
        "--max-steps", "2", "-o", str(run_dir), "--no-export", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "output" / "model.safetensors").is_file()
    assert record(run_dir)["plan"]["method"] == "full"
    assert yaml.safe_load((run_dir / "axolotl.yml").read_text()).get("adapter") is None

    # the same run directory again is refused, and nothing in it changes
    before = (run_dir / "plan.json").read_text()
    again = axo(
        "run", "--gpu", "cpu", "--model", str(tiny_model), "--data", QA, "-o", str(run_dir),
        cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 2 and "--resume" in again.stderr
    assert (run_dir / "plan.json").read_text() == before

    resumed = axo("run", "--resume", str(run_dir), "--max-steps", "3", "--no-export", "--quiet",
                  "--gpu", "cpu", cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rec = record(run_dir)
    assert [a["outcome"] for a in rec["attempts"]] == ["finished", "finished"]
    assert Path(rec["attempts"][1]["resumed_from"]).name == "checkpoint-2"
    state = json.loads((run_dir / "output" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_dataset_axolotl_rejects_names_the_row(tiny_model: Path, tmp_path: Path) -> None:
    # A valid generated config, hand-pointed at a file with a broken line 21.
    gen = tmp_path / "gen"
    dry = axo("run", "--gpu", "cpu", "--model", str(tiny_model), "--data", QA, "-o", str(gen),
              "--dry-run", cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    lines = Path(QA).read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join([*lines[:20], '{"messages": [{"role": "user", "content": "hi"}', *lines[20:30]])
        + "\n"
    )
    cfg = yaml.safe_load((gen / "axolotl.yml").read_text())
    cfg["datasets"][0]["path"] = str(bad)
    cfg["dataset_prepared_path"] = str(tmp_path / "prepared-bad")
    config = tmp_path / "bad.yml"
    config.write_text(yaml.safe_dump(cfg))

    run_dir = tmp_path / "bad-run"
    proc = axo("run", "--config", str(config), "--gpu", "cpu", "-o", str(run_dir), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Axolotl could not prepare the dataset" in proc.stderr
    assert "bad.jsonl:21" in proc.stderr  # our scan names the line; Axolotl says "row 20"
    assert "Traceback" not in proc.stderr
    rec = record(run_dir)
    assert rec["status"] == "failed" and rec["attempts"] == []
    assert (run_dir / "train.log").is_file()
    assert (gen / "plan.json").is_file()  # the earlier (dry) run is untouched


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = axo("demo", "-o", str(out), "--max-steps", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training on CPU" in proc.stderr or "training on" in proc.stderr
    assert f"adapter: {out / 'run' / 'adapter'}" in proc.stdout
    assert f"merged:  {out / 'run' / 'merged'}" in proc.stdout
    assert "Q: " in proc.stdout and "A: " in proc.stdout
    # the base model is pretrained on the bundled prose before the fine-tune (tinymodel.py)
    assert "pretrained for 200 steps" in proc.stderr and "corpus loss" in proc.stderr
    assert "M-parameter toy pretrained for" in proc.stdout
    assert record(out / "run")["status"] == "finished"
    for name in ("Modelfile", "manifest.json"):
        assert (out / "run" / name).is_file()
    # the noise of importing torch/transformers in-process stays out of the terminal
    assert "Failed to load" not in proc.stderr and "Writing model shards" not in proc.stderr
