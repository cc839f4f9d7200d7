"""Files the user names: a parent that is a file, an empty -o, a hostile path in a printed
command. Each is a message with a hint, never "internal error"; commands are quoted."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import yaml
from click.testing import Result

from axo_helper.calibration import CalibrationStore
from axo_helper.tinymodel import demo_data_path

CLI = Callable[..., Result]
RENDER = ["render", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B"]
QA = str(demo_data_path("qa.jsonl"))


def test_render_under_a_file_is_a_message(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    res = cli(*RENDER, "--data", QA, "-o", str(tmp_path / "afile" / "train.yml"))
    assert res.exit_code == 1, res.output
    assert "internal error" not in res.output
    assert "cannot write" in res.stderr and "hint:" in res.stderr


def test_render_to_an_empty_path_says_so(cli: CLI) -> None:
    res = cli(*RENDER, "--data", QA, "-o", "")
    assert res.exit_code == 2
    assert "empty or a directory" in res.stderr and "already exists" not in res.stderr


def test_calibration_export_under_a_file_is_a_message(cli: CLI, tmp_path: Path) -> None:
    CalibrationStore().measurements()
    (tmp_path / "afile").write_text("x")
    res = cli("calibration", "export", "-o", str(tmp_path / "afile" / "cal.csv"))
    assert res.exit_code == 1 and "a parent of the path is a file" in res.stderr
    assert "internal error" not in res.output


def test_printed_commands_quote_a_hostile_path(cli: CLI, tmp_path: Path) -> None:
    evil = tmp_path / "$(touch pwned)" / "train.yml"
    evil.parent.mkdir()
    res = cli(*RENDER, "--data", QA, "-o", str(evil))
    assert res.exit_code == 0, res.output
    validate_line = next(ln for ln in res.stderr.splitlines() if "axo-helper validate" in ln)
    assert shlex.split(validate_line.split(": ", 1)[1])[-1] == str(evil)
    header = evil.read_text()
    run_line = next(ln for ln in header.splitlines() if ln.startswith("# Run it:"))
    argv = shlex.split(run_line.split(":", 1)[1])
    assert argv[:3] == ["axo-helper", "run", "--config"] and argv[3] == str(evil)
    assert yaml.safe_load(header)["base_model"] == "meta-llama/Llama-3.1-8B"
