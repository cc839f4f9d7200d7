"""The model card after a real `axolotl train` (slow): the card PEFT, the Trainer and
Axolotl wrote in output/README.md is merged in, and no host path is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("torch")
pytest.importorskip("axolotl")

from cpu_train import cpu_lora_config  # noqa: E402

from axo_helper.export import export_run  # noqa: E402
from axo_helper.export.hub_card import front_matter  # noqa: E402


def train(tiny_model: Path, run_dir: Path) -> None:
    """Three LoRA steps on CPU, with the base and the data named by absolute paths."""
    cpu_lora_config(tiny_model, run_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "axolotl.cli.train", "axolotl.yml"],
        cwd=run_dir,
        env={**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_card_merges_axolotls_and_names_no_host_path(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    train(tiny_model, run)
    written = (run / "output" / "README.md").read_text()
    assert "Built with Axolotl" in written and str(tiny_model) in written  # what it replaces

    export_run(run)
    for variant in ("adapter", "merged"):
        card = (run / variant / "README.md").read_text()
        front, body = front_matter(card)
        assert str(tmp_path) not in card and str(tiny_model.parent) not in card
        assert "base_model" not in front and "datasets" not in front  # local: no hub ids
        assert front["library_name"] == ("peft" if variant == "adapter" else "transformers")
        assert front["model-index"] == [{"name": "run", "results": []}]
        assert "Built with Axolotl" in body
        assert "<details><summary>See axolotl config</summary>" in body
        assert "## Training procedure" in body and "- training_steps: 3" in body
        assert "- `qa.jsonl` (type `chat_template`)" in body
