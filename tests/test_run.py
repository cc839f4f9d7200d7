"""`run` without training: the decisions (pure helpers) and every path that stops before Axolotl.

The end-to-end runs with real Axolotl are in test_run_e2e.py (marked slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from axo_helper import run as run_mod
from axo_helper.cli import cli
from axo_helper.run import (
    error_summary,
    inputs_are_local,
    latest_checkpoint,
    looks_like_oom,
    set_top_level,
    smaller_batch,
)
from axo_helper.tinymodel import demo_data_path

QA = str(demo_data_path("qa.jsonl"))
LLAMA = "meta-llama/Llama-3.1-8B"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args])


# --------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("mb", "ga", "expected"),
    [
        (16, 1, (8, 2)),
        (4, 4, (2, 8)),
        (2, 8, (1, 16)),
        (6, 1, (3, 2)),
        (3, 5, (1, 15)),  # no divisor of 15 between 1 and 3: straight to 1
        (3, 4, (2, 6)),
        (1, 16, None),
    ],
)
def test_smaller_batch_keeps_the_effective_batch(
    mb: int, ga: int, expected: tuple[int, int] | None
) -> None:
    got = smaller_batch(mb, ga)
    assert got == expected
    if got is not None:
        assert got[0] * got[1] == mb * ga and got[0] < mb


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


# --------------------------------------------------------------------------- dry runs
def test_dry_run_writes_config_and_prints_the_command(tmp_path: Path) -> None:
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


def test_dry_run_two_nodes_prints_every_node(tmp_path: Path) -> None:
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


def test_existing_run_dir_is_refused_and_kept(tmp_path: Path) -> None:
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


def test_max_steps_goes_into_the_config(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = invoke(
        "--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run",
        "--max-steps", "7",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert yaml.safe_load((out / "axolotl.yml").read_text())["max_steps"] == 7


# --------------------------------------------------------------------------- --config
def _rendered(tmp_path: Path) -> Path:
    """A real generated config (for Llama 3.1 8B LoRA on a 4090), to hand-edit."""
    out = tmp_path / "gen"
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 0, res.output
    return out / "axolotl.yml"


def test_config_fit_lowers_micro_batch_and_keeps_the_batch(tmp_path: Path) -> None:
    src = _rendered(tmp_path)
    edited = tmp_path / "edited.yml"
    text = set_top_level(
        src.read_text(), {"micro_batch_size": 32, "gradient_accumulation_steps": 1}, "hand edit"
    )
    edited.write_text(text)
    out = tmp_path / "r"
    plain = invoke("--config", str(edited), "--gpu", "rtx4090", "-o", str(out), "--dry-run")
    assert plain.exit_code == 0, plain.output
    assert "does not fit" in plain.stderr and "--fit" in plain.stderr
    assert yaml.safe_load((out / "axolotl.yml").read_text())["micro_batch_size"] == 32

    fitted = invoke(
        "--config", str(edited), "--gpu", "rtx4090", "-o", str(out), "--dry-run", "--fit", "--force"
    )
    assert fitted.exit_code == 0, fitted.output
    cfg = yaml.safe_load((out / "axolotl.yml").read_text())
    assert cfg["micro_batch_size"] < 32
    assert cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"] == 32
    assert "--fit: micro_batch_size 32 ->" in fitted.stderr
    # the user's own lines and comments are kept; only the changed keys are rewritten
    assert "# Axolotl config written by axo-helper" in (out / "axolotl.yml").read_text()
    record = json.loads((out / "plan.json").read_text())
    assert record["source"] == "config" and any("--fit" in c for c in record["changes"])
    assert cfg["output_dir"] == str((out / "output").resolve())
    assert edited.read_text() == text  # the user's file is never modified


def test_config_missing_is_a_usage_error(tmp_path: Path) -> None:
    res = invoke("--config", str(tmp_path / "nope.yml"), "--dry-run")
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.output


def test_config_invalid_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("base_model: x\nmicro_batch_size: -3\nlearning_rate: fast\nnum_epochs: -1\n")
    res = invoke("--config", str(bad), "--gpu", "cpu", "-o", str(tmp_path / "r"), "--dry-run")
    assert res.exit_code == 1
    assert "not a valid Axolotl config" in res.stderr
    for key in ("micro_batch_size", "learning_rate", "num_epochs"):
        assert key in res.stderr
    assert not (tmp_path / "r").exists()  # nothing written for a config that cannot run


def test_config_yaml_error_has_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("base_model: x\n  micro_batch_size: 2\n: :\n")
    res = invoke("--config", str(bad), "--gpu", "cpu", "--dry-run")
    assert res.exit_code == 1 and "line" in res.stderr


# --------------------------------------------------------------------------- other bad input
def test_axolotl_missing_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_mod, "axolotl_installed", lambda: False)
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(tmp_path / "r"))
    assert res.exit_code == 1
    assert "needs Axolotl and torch" in res.stderr and "pip install" in res.stderr
    assert not (tmp_path / "r").exists()


def test_resume_needs_a_run_dir(tmp_path: Path) -> None:
    res = invoke("--resume", str(tmp_path))
    assert res.exit_code == 2 and "not an axo-helper run directory" in res.stderr


def test_needs_something_to_run() -> None:
    res = invoke()
    assert res.exit_code == 2 and "--config" in res.output


def test_run_needs_data(tmp_path: Path) -> None:
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "-o", str(tmp_path / "r"), "--dry-run")
    assert res.exit_code == 2 and "--data" in res.stderr


def test_demo_refuses_an_earlier_demo_without_force(tmp_path: Path) -> None:
    (tmp_path / "d" / "run").mkdir(parents=True)
    (tmp_path / "d" / "run" / "plan.json").write_text("{}")
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "d")])
    assert res.exit_code == 2 and "--force" in res.stderr
    assert not (tmp_path / "d" / "tiny-model").exists()


@pytest.mark.parametrize(
    ("load", "cores", "expected"),
    [(0.4, 2, None), (1.1, 2, 1), (1.9, 2, 1), (3.0, 2, 1), (3.5, 16, 12)],
)
def test_demo_uses_the_free_cores_on_a_busy_cpu(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, expected: int | None
) -> None:
    import os

    from axo_helper import demo

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert demo.busy_cpu_threads() == expected

    with demo._child_threads(expected):  # what the Axolotl processes inherit
        assert os.environ.get("OMP_NUM_THREADS") == (None if expected is None else str(expected))
    assert "OMP_NUM_THREADS" not in os.environ

    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's setting wins
    assert demo.busy_cpu_threads() is None
    with demo._child_threads(1):
        assert os.environ["OMP_NUM_THREADS"] == "4"
