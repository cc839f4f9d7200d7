"""The calibration row of a finished run, and the prediction it is measured against."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.axolotl
pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl.utils.dict import DictDefault  # noqa: E402
from fake_runs import write_planned_record  # noqa: E402

from axo_helper.calibration import CalibrationStore  # noqa: E402
from axo_helper.plugin.calibrate import record_calibration  # noqa: E402
from axo_helper.plugin.prediction import predicted_gib  # noqa: E402


def test_calibration_is_recorded_for_gpu_runs_only(tiny_model: Path, tmp_path: Path) -> None:
    cfg = DictDefault(
        {
            "base_model": str(tiny_model),
            "adapter": "lora",
            "sequence_len": 256,
            "micro_batch_size": 2,
            "axo_helper_run_dir": str(tmp_path),
            "axo_helper_predicted_gib": 4.0,
        }
    )
    cpu = record_calibration(cfg, {"device_type": "cpu", "world_size": 1})
    assert cpu["calibration"]["recorded"] is False and "CPU" in cpu["calibration"]["reason"]
    assert CalibrationStore().measurements() == []

    gpu = {
        "device_type": "cuda",
        "device": "NVIDIA H100 80GB HBM3",
        "world_size": 1,
        "peak_memory_gib": 5.0,
        "tokens_per_s": 1234.0,
    }
    done = record_calibration(cfg, gpu)
    assert done["calibration"]["recorded"] is True, done
    (m,) = CalibrationStore().measurements()
    assert (m.gpu, m.method, m.micro_batch_size, m.predicted_gib, m.measured_gib) == (
        "NVIDIA H100 80GB HBM3",
        "lora",
        2,
        4.0,
        5.0,
    )
    assert m.tokens_per_s == 1234.0

    cfg["axo_helper_calibrate"] = False
    assert record_calibration(cfg, gpu)["calibration"]["recorded"] is False


def test_prediction_is_read_from_plan_json(tmp_path: Path) -> None:
    # The first plan's estimate (9.0) at the top and in the plan; after an OOM re-plan
    # the last attempt's estimate (7.5) is the one this training ran under.
    record = write_planned_record(tmp_path, memory={"total_gib": 9.0}, attempt_gib=(9.0, 7.5))
    assert record["memory"]["total_gib"] == record["plan"]["memory"]["total_gib"] == 9.0
    cfg = DictDefault({"axo_helper_run_dir": str(tmp_path)})
    assert predicted_gib(cfg, tmp_path, setup=None) == (7.5, "plan.json")


def test_a_missing_broken_or_unwritten_plan_json_falls_back_to_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import axo_helper.memory as memory_mod

    monkeypatch.setattr(memory_mod, "estimate", lambda setup: SimpleNamespace(total_gib=2.5))
    cfg = DictDefault({"axo_helper_run_dir": str(tmp_path)})
    assert predicted_gib(cfg, tmp_path, setup=None) == (2.5, "estimate")
    (tmp_path / "plan.json").write_text("{not json")
    assert predicted_gib(cfg, tmp_path, setup=None) == (2.5, "estimate")
    # Keys `run` never writes are not read: no "final", no flat plan object.
    (tmp_path / "plan.json").write_text(
        json.dumps({"final": {"memory": {"total_gib": 5.0}}, "method": "lora"})
    )
    assert predicted_gib(cfg, tmp_path, setup=None) == (2.5, "estimate")
    (tmp_path / "plan.json").write_text(json.dumps({"memory": {"total_gib": float("inf")}}))
    assert predicted_gib(cfg, tmp_path, setup=None) == (2.5, "estimate")
