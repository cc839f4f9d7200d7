"""`run` without training: planned dry runs and bad input, every path that stops before Axolotl.

`--config` is in test_run_config.py; the end-to-end runs with real Axolotl are in
test_run_e2e.py (marked slow).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from axo_helper import versions as versions_mod
from axo_helper.tinymodel import demo_data_path

QA = str(demo_data_path("qa.jsonl"))
LLAMA = "meta-llama/Llama-3.1-8B"
CLI = Callable[..., Result]


def test_dry_run_writes_config_and_prints_the_command(invoke: CLI, tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 0, res.output
    assert f"config: {out}/axolotl.yml" in res.stdout
    assert "-m axolotl.cli.train" in res.stdout and "AXOLOTL_DO_NOT_TRACK=1" in res.stdout
    cfg = yaml.safe_load((out / "axolotl.yml").read_text())
    assert cfg["output_dir"] == str((out / "output").resolve())
    assert cfg["dataset_prepared_path"] == str((out / "prepared").resolve())
    record = json.loads((out / "plan.json").read_text())
    assert record["status"] == "dry-run"
    assert record["plan"]["micro_batch_size"] == cfg["micro_batch_size"]
    assert record["versions"]["axo-helper"]
    assert not (out / "output").exists()
    # a dry run's directory may be used for the real run without --force
    again = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert again.exit_code == 0, again.output


def test_dry_run_two_nodes_prints_every_node(invoke: CLI, tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["--gpu", "8xh100", "--nodes", "2", "--model", LLAMA, "--data", QA, "--method", "full"]
    args += ["--distributed", "zero3", "-o", str(out), "--master-addr", "10.1.2.3", "--dry-run"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "command (node 0):" in res.stdout and "command (node 1):" in res.stdout
    for rank in (0, 1):
        assert (
            f"--nnodes 2 --node-rank {rank} --master-addr 10.1.2.3 --master-port 29500 --nproc-per-node 8"
            in res.stdout
        )
    cfg = yaml.safe_load((out / "axolotl.yml").read_text())
    ds = Path(cfg["deepspeed"])
    assert ds.is_absolute() and ds.parent == out.resolve()
    assert json.loads(ds.read_text())["zero_optimization"]["stage"] == 3
    # starting it for real needs one --node-rank per machine
    real = invoke(*[a for a in args if a != "--dry-run"], "--force")
    assert real.exit_code == 2 and "--node-rank" in real.stderr


def test_existing_run_dir_is_refused_and_kept(invoke: CLI, tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "plan.json").write_text('{"status": "finished"}')
    (out / "output").mkdir()
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 2
    assert "already holds a run" in res.stderr and "--resume" in res.stderr
    assert "Traceback" not in res.output
    assert json.loads((out / "plan.json").read_text()) == {"status": "finished"}
    forced = invoke(
        "--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run", "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert not (out / "output").exists()


def test_max_steps_goes_into_the_config(invoke: CLI, tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = invoke(
        "--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run",
        "--max-steps", "7",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert yaml.safe_load((out / "axolotl.yml").read_text())["max_steps"] == 7


# --------------------------------------------------------------------------- other bad input
def test_axolotl_missing_says_how_to_install(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versions_mod, "axolotl_installed", lambda: False)
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(tmp_path / "r"))
    assert res.exit_code == 1
    assert "needs Axolotl and torch" in res.stderr and "pip install" in res.stderr
    assert not (tmp_path / "r").exists()


def test_resume_needs_a_run_dir(invoke: CLI, tmp_path: Path) -> None:
    res = invoke("--resume", str(tmp_path))
    assert res.exit_code == 2 and "not an axo-helper run directory" in res.stderr


def test_needs_something_to_run(invoke: CLI) -> None:
    res = invoke()
    assert res.exit_code == 2 and "--config" in res.output


def test_run_needs_data(invoke: CLI, tmp_path: Path) -> None:
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "-o", str(tmp_path / "r"), "--dry-run")
    assert res.exit_code == 2 and "--data" in res.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--gpu", "rtx4090", "--model", LLAMA], "--data"),
        (["--config", "nope.yml"], "does not exist"),
        (["--resume", "."], "not an axo-helper run directory"),
    ],
)
def test_usage_errors_come_before_the_axolotl_check(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    # A laptop install without the train extra: a bad option is still a usage error (2).
    monkeypatch.setattr(versions_mod, "axolotl_installed", lambda: False)
    monkeypatch.chdir(tmp_path)
    res = invoke(*args, "-o", str(tmp_path / "r"))
    assert res.exit_code == 2, res.output
    assert says in res.stderr and "needs Axolotl" not in res.stderr
    assert not (tmp_path / "r").exists()


def test_plan_json_records_the_dataset_rows(invoke: CLI, tmp_path: Path) -> None:
    from axo_helper.rundir import RunDir, data_rows, plan_object, predicted_gib

    out = tmp_path / "r"
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 0, res.output
    record = RunDir(out).read_plan_record()
    rows = sum(1 for line in Path(QA).read_text().splitlines() if line.strip())
    # The model card's row count: written by run, read back through rundir.data_rows.
    assert record is not None and data_rows(record) == rows
    plan = plan_object(record)
    assert plan is not None and plan["method"] == record["plan"]["method"]
    assert predicted_gib(record) == record["memory"]["total_gib"]


def test_an_axolotl_outside_the_tested_range_is_warned_about(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = versions_mod.version
    monkeypatch.setattr(
        versions_mod, "version", lambda dist: "0.30.0" if dist == "axolotl" else real(dist)
    )
    out = tmp_path / "r"
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 0, res.output
    assert "Axolotl 0.30.0 is outside the tested range axolotl>=0.19,<0.22" in res.stderr
    monkeypatch.setattr(versions_mod, "version", real)
    res = invoke(
        "--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run", "--force"
    )
    assert "outside the tested range" not in res.stderr
