"""`run`'s pure helpers: config edits, log scanning, checkpoints, local inputs.

The next micro batch after an OOM is fit.smaller_batch (tests/test_fit.py).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from axo_helper.run.configedit import inputs_are_local, set_top_level
from axo_helper.run.logscan import error_summary, looks_like_oom
from axo_helper.rundir import latest_checkpoint

LLAMA = "meta-llama/Llama-3.1-8B"


CONFIG = """\
# header comment
base_model: /m  # why
micro_batch_size: 4  # 21.3 of 24 GiB
plugins:
  - a.B

# ---- output
output_dir: ./out
"""


def test_set_top_level_keeps_comments_and_layout() -> None:
    text = set_top_level(
        CONFIG,
        {"micro_batch_size": 2, "plugins": ["a.B", "c.D"], "max_steps": 5, "output_dir": None},
        "set by test",
    )
    assert yaml.safe_load(text) == {
        "base_model": "/m",
        "micro_batch_size": 2,
        "plugins": ["a.B", "c.D"],
        "output_dir": None,
        "max_steps": 5,
    }
    assert text.startswith("# header comment\nbase_model: /m  # why\n")
    assert "micro_batch_size: 2  # set by test\n" in text
    assert "\n# ---- output\n" in text  # the section comment survives the block edit
    assert text.endswith("max_steps: 5  # set by test\n")


def test_set_top_level_hostile_value_and_fallback() -> None:
    hostile = "x: y\n# not a comment"
    assert (
        yaml.safe_load(set_top_level(CONFIG, {"output_dir": hostile}, "n"))["output_dir"] == hostile
    )
    anchored = "a: &x 1\nb: *x\n"
    out = set_top_level(anchored, {"a": 2}, "n")
    assert yaml.safe_load(out) == {"a": 2, "b": 1}


def test_oom_detection_and_error_summary() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 3, in <module>',
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    ]
    assert looks_like_oom(lines)
    assert not looks_like_oom(["RuntimeError: something else"])
    summary = error_summary(
        [
            "[ERROR] Failed to load JSON from file 'a.jsonl' with error: JSON parse error in row 20",
            "Traceback (most recent call last):",
            "datasets.exceptions.DatasetGenerationError: An error occurred while generating the dataset",
        ]
    )
    assert summary is not None
    assert summary.startswith("datasets.exceptions.DatasetGenerationError: An error occurred")
    assert "row 20" in summary


def test_latest_checkpoint(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "missing") is None
    for step, complete in ((2, True), (10, True), (12, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_inputs_are_local(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "d.jsonl").write_text("{}\n")
    cfg = {"base_model": str(tmp_path / "model"), "datasets": [{"path": "d.jsonl"}]}
    assert inputs_are_local(cfg, tmp_path)
    assert not inputs_are_local({**cfg, "base_model": LLAMA}, tmp_path)
    assert not inputs_are_local({**cfg, "datasets": [{"path": "org/hub-dataset"}]}, tmp_path)
