"""`run --config FILE` without training: re-validation, the fit warning, `--fit`.

Planned dry runs and other bad input are in test_run_dry.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import Result

from axo_helper.run.configedit import set_top_level
from axo_helper.tinymodel import demo_data_path

QA = str(demo_data_path("qa.jsonl"))
LLAMA = "meta-llama/Llama-3.1-8B"
CLI = Callable[..., Result]


def _rendered(invoke: CLI, tmp_path: Path) -> Path:
    """A real generated config (for Llama 3.1 8B LoRA on a 4090), to hand-edit."""
    out = tmp_path / "gen"
    res = invoke("--gpu", "rtx4090", "--model", LLAMA, "--data", QA, "-o", str(out), "--dry-run")
    assert res.exit_code == 0, res.output
    return out / "axolotl.yml"


def test_config_fit_lowers_micro_batch_and_keeps_the_batch(invoke: CLI, tmp_path: Path) -> None:
    src = _rendered(invoke, tmp_path)
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


def test_config_missing_is_a_usage_error(invoke: CLI, tmp_path: Path) -> None:
    res = invoke("--config", str(tmp_path / "nope.yml"), "--dry-run")
    assert res.exit_code == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.output


def test_config_invalid_lists_every_problem(invoke: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    # Types the schema (Axolotl's pydantic models) refuses, and a required key missing.
    bad.write_text(
        "base_model: x\nmicro_batch_size: two\nnum_epochs: lots\nsample_packing: maybe\n"
    )
    res = invoke("--config", str(bad), "--gpu", "cpu", "-o", str(tmp_path / "r"), "--dry-run")
    assert res.exit_code == 1
    assert "not a valid Axolotl config" in res.stderr
    for key in ("micro_batch_size", "num_epochs", "sample_packing", "learning_rate", "datasets"):
        assert key in res.stderr
    assert not (tmp_path / "r").exists()  # nothing written for a config that cannot run


def test_config_yaml_error_has_the_line(invoke: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("base_model: x\n  micro_batch_size: 2\n: :\n")
    res = invoke("--config", str(bad), "--gpu", "cpu", "--dry-run")
    assert res.exit_code == 1 and "line" in res.stderr


def test_config_fit_inspects_the_model_once(
    invoke: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from axo_helper import model as model_mod

    src = _rendered(invoke, tmp_path)
    edited = tmp_path / "edited.yml"
    edited.write_text(
        set_top_level(
            src.read_text(), {"micro_batch_size": 32, "gradient_accumulation_steps": 1}, "edit"
        )
    )
    calls: list[str] = []
    real = model_mod.inspect

    def counting(name: str, **kwargs: object) -> object:
        calls.append(name)
        return real(name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(model_mod, "inspect", counting)
    out = tmp_path / "r"
    res = invoke("--config", str(edited), "--gpu", "rtx4090", "-o", str(out), "--dry-run", "--fit")
    assert res.exit_code == 0, res.output
    assert "--fit: micro_batch_size 32 ->" in res.stderr
    assert calls == [LLAMA]  # validation inspected it; --fit's candidates reuse it


def test_config_fit_agrees_with_plan_and_validate(invoke: CLI, tmp_path: Path) -> None:
    # One rule (axo_helper/fit.py) and one reader (config/read.py): on the same config,
    # --fit picks the largest exact divisor batch at or below validate's "would fit",
    # and plan, validate and --fit predict the same GiB for the micro batch it picks.
    from dataclasses import replace

    from axo_helper import fit, hardware
    from axo_helper.core import PlanRequest, make_plan
    from axo_helper.validate import validate_file

    src = _rendered(invoke, tmp_path)
    edited = tmp_path / "edited.yml"
    edited.write_text(
        set_top_level(
            src.read_text(), {"micro_batch_size": 32, "gradient_accumulation_steps": 1}, "edit"
        )
    )
    out = tmp_path / "r"
    res = invoke("--config", str(edited), "--gpu", "rtx4090", "-o", str(out), "--dry-run", "--fit")
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "axolotl.yml").read_text())
    mb, ga = cfg["micro_batch_size"], cfg["gradient_accumulation_steps"]
    predicted = re.search(r"predicted ([0-9.]+) of ([0-9.]+) GiB", res.stderr)
    assert predicted is not None, res.stderr

    hw = hardware.resolve("rtx4090")
    before = validate_file(edited, hardware=hw, run_axolotl=False).memory
    assert before is not None and not before.fits and before.suggestion is not None
    suggested = re.search(r"micro_batch_size (\d+) would fit", before.suggestion)
    assert suggested is not None, before.suggestion
    would_fit = int(suggested[1])
    steps = [m for m, _ in fit.smaller_batches(32, 1)]
    assert mb == max(m for m in steps if m <= would_fit)

    after = validate_file(out / "axolotl.yml", hardware=hw, run_axolotl=False).memory
    assert after is not None and after.fits and after.setup is not None
    assert f"{after.breakdown.total_gib:.1f}" == predicted[1]
    assert f"{after.budget_gib:.1f}" == predicted[2]

    plan = make_plan(PlanRequest(gpu="rtx4090", model=LLAMA, data=QA, micro_batch=mb))
    assert replace(plan.setup, gradient_accumulation_steps=ga) == after.setup
    assert plan.memory.total_gib == after.breakdown.total_gib
    assert plan.budget_gib == after.budget_gib
