"""Messages that said too little or the wrong thing: a hint on an interrupted
preprocess, a FIFO as --data named for what it is."""

from __future__ import annotations

import os
import shlex
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from dataset_rows import error

from axo_helper import launch as launch_mod
from axo_helper.errors import DatasetPathError, Interrupted
from axo_helper.launch import LaunchSpec
from axo_helper.run.context import RunContext
from axo_helper.run.preprocess import preprocess
from axo_helper.run.request import RunRequest
from axo_helper.rundir import RunDir


def test_an_interrupted_preprocess_says_how_to_start_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunContext(RunRequest(quiet=True), None)
    run.dir = RunDir(tmp_path / "runs $(x)")

    def child(spec: LaunchSpec, phase: str, tail: deque[str], watch: Any = None) -> int:
        return -2

    monkeypatch.setattr(run, "run_child", child)
    monkeypatch.setattr(launch_mod, "interrupted", lambda: True)
    spec = LaunchSpec(("python", "-m", "axolotl.cli.preprocess", "x.yml"), {}, ".")
    with pytest.raises(Interrupted) as caught:
        preprocess(run, spec, {})
    hint = caught.value.hint or ""
    pasted = shlex.split(hint.split("start it again with: ")[1].split(" (")[0])
    assert pasted == ["axo-helper", "run", "--resume", str(tmp_path / "runs $(x)")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_a_fifo_as_data_is_named_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.jsonl"
    os.mkfifo(fifo)
    err = error(fifo)
    assert isinstance(err, DatasetPathError) and err.exit_code == 2
    assert "is not a regular file or a directory (a pipe" in err.message
    assert "contains no" not in err.message and err.hint
