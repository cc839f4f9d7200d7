"""`run`'s steps with the child process stubbed: exit codes and the batch each step picks."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest

from axo_helper import launch as launch_mod
from axo_helper.errors import EXIT_INTERRUPTED, Interrupted
from axo_helper.launch import LaunchSpec
from axo_helper.run.attempts import _after_oom
from axo_helper.run.context import RunContext
from axo_helper.run.preprocess import preprocess
from axo_helper.run.request import Attempt, RunRequest
from axo_helper.rundir import RunDir

SPEC = LaunchSpec(("python", "-m", "axolotl.cli.preprocess", "x.yml"), {}, ".")


def test_ctrl_c_while_preprocessing_is_interrupted_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunContext(RunRequest(quiet=True), None)
    run.dir = RunDir(tmp_path)

    def child(spec: LaunchSpec, phase: str, tail: deque[str], watch: Any = None) -> int:
        return -2  # the child stopped by the forwarded SIGINT

    monkeypatch.setattr(run, "run_child", child)
    monkeypatch.setattr(launch_mod, "interrupted", lambda: True)
    with pytest.raises(Interrupted) as caught:
        preprocess(run, SPEC, {})
    assert caught.value.exit_code == EXIT_INTERRUPTED == 130
    assert "interrupted while preprocessing" in caught.value.message
    record = run.dir.read_plan_record()
    assert record is not None and record["status"] == "interrupted"


def _attempt(mb: int, ga: int) -> Attempt:
    return Attempt(1, mb, ga, gradient_checkpointing=True, resumed_from=None, command="c")


def test_after_oom_halves_the_micro_batch_and_keeps_the_batch() -> None:
    new, what = _after_oom(
        _attempt(4, 4), {"micro_batch_size": 4, "gradient_accumulation_steps": 4}
    )
    assert new == {"micro_batch_size": 2, "gradient_accumulation_steps": 8}
    assert what == (
        "micro_batch_size 4 -> 2, gradient_accumulation_steps 4 -> 8 "
        "(same 16 samples per GPU per step)"
    )
    # batch_size alone sets the accumulation: Axolotl derives it again from the new micro batch
    new, _ = _after_oom(_attempt(4, 4), {"micro_batch_size": 4, "batch_size": 16})
    assert new == {"micro_batch_size": 2}


def test_after_oom_at_micro_batch_1_turns_checkpointing_on_then_gives_up() -> None:
    plain = Attempt(1, 1, 16, gradient_checkpointing=False, resumed_from=None, command="c")
    new, what = _after_oom(plain, {"micro_batch_size": 1})
    assert new["gradient_checkpointing"] is True and "already 1" in what
    assert _after_oom(_attempt(1, 16), {"micro_batch_size": 1, "gradient_checkpointing": True}) == (
        {},
        "",
    )
