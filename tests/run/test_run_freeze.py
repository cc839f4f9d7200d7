"""`run --method freeze` end to end: real Axolotl on CPU trains the tiny model's last
block only, and export publishes the trained model itself as merged/.

The frozen blocks and the embeddings come out bit for bit as they went in; the trained
block does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from axo_helper.tinymodel import demo_data_path

pytestmark = [pytest.mark.slow, pytest.mark.axolotl]
pytest.importorskip("axolotl", reason="needs the [train] extra")


def _tensors(directory: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    out: dict[str, object] = {}
    for f in sorted(directory.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def test_freeze_run_trains_the_last_block_only(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    run_dir = tmp_path / "freeze"
    proc = subprocess.run(
        [
            sys.executable, "-m", "axo_helper", "run", "--gpu", "cpu",
            "--model", str(tiny_model), "--data", str(demo_data_path("qa.jsonl")),
            "--method", "freeze", "--freeze-layers", "1", "--max-steps", "3",
            "-o", str(run_dir), "--quiet",
        ],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    cfg = yaml.safe_load((run_dir / "axolotl.yml").read_text())
    layers = json.loads((tiny_model / "config.json").read_text())["num_hidden_layers"]
    last = layers - 1
    assert cfg["unfrozen_parameters"] == [f"^model.layers.({last}).", "^model.norm."]
    assert "adapter" not in cfg
    plan = json.loads((run_dir / "plan.json").read_text())
    assert "freeze" in json.dumps(plan)

    merged = run_dir / "merged"
    assert not (run_dir / "adapter").exists()
    assert (merged / "README.md").is_file() and (merged / "tokenizer.json").is_file()
    before, after = _tensors(tiny_model), _tensors(merged)
    assert set(before) <= set(after) | {"lm_head.weight"}
    changed = []
    for name, old in before.items():
        if name not in after:
            continue
        new = after[name]
        assert isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor)
        same = torch.equal(old.to(new.dtype), new) if old.dtype != new.dtype else torch.equal(old, new)
        trained = name.startswith((f"model.layers.{last}.", "model.norm."))
        if not trained:
            assert same, f"{name} is frozen but changed"
        elif not same:
            changed.append(name)
    assert any(n.startswith(f"model.layers.{last}.") for n in changed), changed
