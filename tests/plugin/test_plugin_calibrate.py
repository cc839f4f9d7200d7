"""The calibration row of a finished run, and the prediction it is measured against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.axolotl
pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl.utils.dict import DictDefault  # noqa: E402

from axo_helper.calibration import CalibrationStore  # noqa: E402
from axo_helper.plugin.calibrate import record_calibration  # noqa: E402
from axo_helper.plugin.prediction import plan_json_prediction, predicted_gib  # noqa: E402


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
    (tmp_path / "plan.json").write_text(
        json.dumps(
            {
                "memory": {"total_gib": 9.0},  # the first plan's estimate
                "attempts": [{"memory": {"total_gib": 9.0}}, {"memory": {"total_gib": 7.5}}],
                "plan": {"memory": {"total_gib": 9.0}},
            }
        )
    )
    cfg = DictDefault({"axo_helper_run_dir": str(tmp_path)})
    assert predicted_gib(cfg, tmp_path, setup=None) == (7.5, "plan.json")


def test_a_missing_or_broken_plan_json_gives_no_prediction(tmp_path: Path) -> None:
    assert plan_json_prediction(tmp_path) is None
    (tmp_path / "plan.json").write_text("{not json")
    assert plan_json_prediction(tmp_path) is None
