"""`run --resume` on a copied run directory trains into the copy, never the original."""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from axo_helper import versions as versions_mod
from axo_helper.run.context import RunContext
from axo_helper.rundir import PLUGIN_RUN_DIR_KEY, RunDir
from axo_helper.tinymodel import demo_data_path

QA = str(demo_data_path("qa.jsonl"))
LLAMA = "meta-llama/Llama-3.1-8B"
CLI = Callable[..., Result]


def _trained_run(invoke: CLI, run_dir: Path) -> Path:
    """A planned run directory with a checkpoint in output/, as training leaves it."""
    res = invoke(
        "--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(run_dir), "--dry-run"
    )
    assert res.exit_code == 0, res.output
    ckpt = RunDir(run_dir).output / "checkpoint-10"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 10}')
    return run_dir


def _fake_axolotl(seen: list[dict[str, Any]]) -> Callable[..., int]:
    """Stands in for the Axolotl child: trains into what the config names, as Axolotl does."""

    def run_child(
        self: RunContext, spec: Any, phase: str, tail: deque[str], watch: Any = None
    ) -> int:
        cfg = yaml.safe_load(self.dir.config.read_text())
        seen.append(cfg)
        out = Path(cfg["output_dir"])
        (out / "checkpoint-15").mkdir(parents=True)
        (out / "checkpoint-15" / "trainer_state.json").write_text('{"global_step": 15}')
        (out / "adapter_model.safetensors").write_bytes(b"trained")
        if cfg.get(PLUGIN_RUN_DIR_KEY):
            (Path(cfg[PLUGIN_RUN_DIR_KEY]) / "metrics.json").write_text("{}")
        return 0

    return run_child


def test_resume_of_a_copy_trains_into_the_copy(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _trained_run(invoke, tmp_path / "A")
    b = tmp_path / "B"
    shutil.copytree(a, b, symlinks=True)
    a_config = (a / "axolotl.yml").read_text()
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(RunContext, "run_child", _fake_axolotl(seen))
    monkeypatch.setattr(versions_mod, "axolotl_installed", lambda: True)

    res = invoke("--resume", str(b), "--max-steps", "15", "--gpu", "cpu", "--no-export")
    assert res.exit_code == 0, res.output
    assert "was written for" in res.stderr and "rebound to" in res.stderr
    (cfg,) = seen
    assert cfg["output_dir"] == str(b.resolve() / "output")
    assert cfg["dataset_prepared_path"] == str(b.resolve() / "prepared")
    assert cfg["resume_from_checkpoint"] == str(b.resolve() / "output" / "checkpoint-10")
    if PLUGIN_RUN_DIR_KEY in cfg:
        assert cfg[PLUGIN_RUN_DIR_KEY] == str(b.resolve())
    # A is untouched: no new checkpoint, weights, metrics or config change.
    assert (a / "axolotl.yml").read_text() == a_config
    assert sorted(p.name for p in (a / "output").iterdir()) == ["checkpoint-10"]
    assert not (a / "metrics.json").exists()
    assert (b / "output" / "adapter_model.safetensors").read_bytes() == b"trained"
    record = RunDir(b).read_plan_record()
    assert record is not None and record["run_dir"] == str(b.resolve())


def test_resume_of_its_own_directory_changes_no_path(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _trained_run(invoke, tmp_path / "A")
    before = yaml.safe_load((a / "axolotl.yml").read_text())
    res = invoke("--resume", str(a), "--dry-run", "--gpu", "cpu")
    assert res.exit_code == 0, res.output
    assert "rebound" not in res.stderr
    after = yaml.safe_load((a / "axolotl.yml").read_text())
    assert after["output_dir"] == before["output_dir"] == str(a.resolve() / "output")
