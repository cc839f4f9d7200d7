"""Printed next steps read as literal arguments when pasted into a shell, and
`validate --json` answers on stdout even for a file it cannot read."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from dataset_rows import ALPACA, write_jsonl
from hostile_inputs import TINY_LLAMA as TINY
from model_fixtures import write

from axo_helper.launch import LaunchSpec, format_command

CLI = Callable[..., Result]
HOSTILE = "runs $(touch pwned) `id`"


def pasted(line: str, after: str) -> list[str]:
    """The words a POSIX shell makes of the command that follows `after` in `line`."""
    tail = line.split(after, 1)[1]
    return shlex.split(tail.rstrip(")`, ").rstrip("`"))


def test_an_invalid_config_hint_quotes_its_path(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / HOSTILE
    folder.mkdir()
    bad = folder / "bad $(x).yml"
    bad.write_text("base_model: x\nmicro_batch_size: two\n")
    res = cli("run", "--config", str(bad), "--gpu", "cpu", "-o", str(tmp_path / "r"), "--dry-run")
    assert res.exit_code == 1, res.output
    hint = next(line for line in res.stderr.splitlines() if "hint:" in line)
    assert pasted(hint, "check with: ") == ["axo-helper", "validate", str(bad)]


def test_a_taken_run_directory_hint_quotes_its_path(cli: CLI, tmp_path: Path) -> None:
    write(tmp_path / "m", "config.json", TINY)
    data = write_jsonl(tmp_path / "qa.jsonl", [ALPACA])
    cfg = tmp_path / "train.yml"
    cfg.write_text(
        f"base_model: {tmp_path / 'm'}\ndatasets:\n  - path: {data}\n    type: alpaca\n"
        "learning_rate: 0.0002\nmicro_batch_size: 1\nnum_epochs: 1\nsequence_len: 256\n"
    )
    run_dir = tmp_path / HOSTILE
    run_dir.mkdir()
    (run_dir / "train.log").write_text("an earlier run\n")
    res = cli("run", "--config", str(cfg), "--gpu", "cpu", "-o", str(run_dir), "--dry-run")
    assert res.exit_code == 2, res.output
    hint = next(line for line in res.stderr.splitlines() if "hint:" in line)
    words = pasted(hint.split(", pick another")[0], "continue it with ")
    assert words == ["axo-helper", "run", "--resume", str(run_dir)]


def test_a_launch_command_quotes_every_argument_and_value() -> None:
    spec = LaunchSpec(
        argv=["python", "-m", "axolotl.cli.train", f"/tmp/{HOSTILE}/axolotl.yml"],
        env={"HF_HUB_OFFLINE": "1", "AXO_HELPER_RUN_DIR": f"/tmp/{HOSTILE}"},
        cwd=Path("/tmp"),
    )
    line = format_command(spec, base_env={})
    words = shlex.split(line)
    assert words[-1] == f"/tmp/{HOSTILE}/axolotl.yml"
    assert f"AXO_HELPER_RUN_DIR=/tmp/{HOSTILE}" in words
    assert not re.search(r"(?<!')\$\(touch", line.replace(f"'/tmp/{HOSTILE}", ""))


def test_export_hint_for_an_unfinished_run_quotes_the_run_directory(
    cli: CLI, tmp_path: Path
) -> None:
    run = tmp_path / HOSTILE
    (run / "output" / "checkpoint-5").mkdir(parents=True)
    (run / "axolotl.yml").write_text(
        f"base_model: {tmp_path / 'base'}\nadapter: lora\noutput_dir: {run / 'output'}\n"
    )
    res = cli("export", str(run))
    assert res.exit_code == 1, res.output
    hint = next(line for line in res.stderr.splitlines() if "hint:" in line)
    assert pasted(hint, "resume it (`") == ["axo-helper", "run", "--resume", str(run)]


def test_validate_json_reports_a_non_utf8_file_on_stdout(cli: CLI, tmp_path: Path) -> None:
    latin = tmp_path / "latin.yml"
    latin.write_bytes(b"base_model: m\ncomment: caf\xe9\n")
    res = cli("validate", str(latin), "--json", "--gpu", "none", "--no-axolotl")
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert report["valid"] is False and report["config"] == str(latin)
    assert "is not UTF-8 text" in report["errors"][0]["message"]
    assert report["errors"][0]["source"] == "file"
    plain = cli("validate", str(latin), "--gpu", "none", "--no-axolotl")
    assert plain.exit_code == 1 and "is not UTF-8 text" in plain.stderr and not plain.stdout
