"""The Axolotl plugin: metrics stream and summary, calibration, inertness, fault seam.

One end-to-end test runs real `axolotl train` on CPU with the plugin (slow); the
rest drive the recorder and callbacks directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.axolotl

torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl.utils.dict import DictDefault  # noqa: E402

from axo_helper import plugin as pl  # noqa: E402
from axo_helper.calibration import CalibrationStore  # noqa: E402

QA = Path(pl.__file__).parent / "demo_data" / "qa.jsonl"


def read_stream(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / pl.METRICS_STREAM).read_text().splitlines()]


# --------------------------------------------------------------------------- recorder
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_recorder_streams_steps_and_writes_the_summary_once(tmp_path: Path) -> None:
    clock = Clock()
    rec = pl.MetricsRecorder(
        tmp_path,
        world_size=2,
        now=clock,
        memory=lambda: (3.5, "cuda_max_memory_reserved"),
        device="NVIDIA H100",
    )
    rec.begin(max_steps=3)
    for step, (dt, tokens, loss) in enumerate(
        [(5.0, 100, 2.0), (1.0, 100, 1.5), (1.0, 300, 1.0)], 1
    ):
        clock.t += dt
        rec.step(step=step, epoch=step / 3, tokens=tokens)
        if step != 2:  # step 2 was not logged (logging_steps > 1): written without a loss
            rec.log(step=step, logs={"loss": loss, "learning_rate": 1e-4, "grad_norm": 0.5})
        rec.log(step=step, logs={"eval_loss": 9.9})  # other logs are ignored
    first = rec.finish()
    assert rec.finish() == {}  # post_train's second call: nothing more

    lines = read_stream(tmp_path)
    assert [ln["event"] for ln in lines] == ["start", "step", "step", "step", "end"]
    s1, s2, s3 = lines[1:4]
    assert (s1["step"], s1["loss"], s1["step_time_s"], s1["tokens"]) == (1, 2.0, 5.0, 200)
    assert s1["tokens_per_s"] == 40.0 and s1["peak_memory_gib"] == 3.5 and s1["max_steps"] == 3
    assert s2["loss"] is None and s2["step"] == 2
    assert s3["learning_rate"] == 1e-4

    summary = json.loads((tmp_path / pl.METRICS_SUMMARY).read_text())
    assert summary == first
    assert summary["tokens_per_s"] == pytest.approx(800 / 2.0)  # the warm-up step left out
    assert summary["step_times_s"] == [5.0, 1.0, 1.0] and summary["final_loss"] == 1.0
    assert summary["device_type"] == "cuda" and summary["peak_memory_gib"] == 3.5


def test_recorder_appends_on_resume(tmp_path: Path) -> None:
    for attempt in range(2):
        rec = pl.MetricsRecorder(tmp_path, now=Clock(), memory=lambda: (1.0, "process_max_rss"))
        rec.begin(max_steps=4, resumed_from_step=2 * attempt)
    assert [ln["resumed_from_step"] for ln in read_stream(tmp_path)] == [0, 2]


def test_token_counter_counts_non_padding_tokens() -> None:
    class Model(torch.nn.Module):
        def forward(self, input_ids: Any = None, attention_mask: Any = None) -> None:
            return None

    model = Model()
    counter = pl.TokenCounter(pad_token_id=0)
    counter.attach(model)
    assert counter.take() is None
    # packed rows: attention_mask holds sequence ids, not 0/1
    model(input_ids=torch.ones(2, 4), attention_mask=torch.tensor([[1, 1, 2, 0], [1, 2, 3, 3]]))
    model(input_ids=torch.tensor([[5, 6, 0, 0]]))  # no mask: pad id
    assert counter.take() == 9
    model.eval()
    model(input_ids=torch.ones(1, 8))  # evaluation is not training throughput
    assert counter.take() == 0
    counter.detach()


# --------------------------------------------------------------------------- the plugin
def test_plugin_is_inert_without_its_keys() -> None:
    plugin = pl.AxoHelperPlugin()
    assert plugin.add_callbacks_post_trainer(DictDefault({"plugins": []}), trainer=None) == []
    plugin.post_train(DictDefault({}), model=None)  # nothing to finish, nothing raised
    assert plugin.get_input_args() == "axo_helper.plugin.AxoHelperArgs"
    fields = pl.AxoHelperArgs.model_fields
    assert all(f.startswith("axo_helper_") and fields[f].default is None for f in fields)


def test_input_args_merge_into_axolotls_schema() -> None:
    from axolotl.integrations.base import PluginManager
    from axolotl.integrations.config import merge_input_args

    manager = PluginManager.get_instance()
    manager.register("axo_helper.plugin.AxoHelperPlugin")
    try:
        _, input_config = merge_input_args()
        assert "axo_helper_run_dir" in input_config.model_fields
    finally:
        manager.plugins.pop("axo_helper.plugin.AxoHelperPlugin", None)


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
    cpu = pl.record_calibration(cfg, {"device_type": "cpu", "world_size": 1})
    assert cpu["calibration"]["recorded"] is False and "CPU" in cpu["calibration"]["reason"]
    assert CalibrationStore().measurements() == []

    gpu = {
        "device_type": "cuda",
        "device": "NVIDIA H100 80GB HBM3",
        "world_size": 1,
        "peak_memory_gib": 5.0,
        "tokens_per_s": 1234.0,
    }
    done = pl.record_calibration(cfg, gpu)
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
    assert pl.record_calibration(cfg, gpu)["calibration"]["recorded"] is False


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
    assert pl._predicted_gib(cfg, tmp_path, setup=None) == (7.5, "plan.json")


def test_fault_injection_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = DictDefault({"micro_batch_size": 4})
    assert pl.fault_callback(cfg) is None
    monkeypatch.setenv(pl.FAULT_OOM_AT_STEP, "2")
    cb = pl.fault_callback(cfg)
    assert cb is not None
    state = type("S", (), {"global_step": 1})()
    cb.on_step_end(None, state, None)  # step 1: fine
    state.global_step = 2
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        cb.on_step_end(None, state, None)
    monkeypatch.setenv(pl.FAULT_OOM_ABOVE_MICRO_BATCH, "4")
    assert pl.fault_callback(cfg) is None  # micro batch 4 "fits"
    monkeypatch.setenv(pl.FAULT_OOM_ABOVE_MICRO_BATCH, "2")
    assert pl.fault_callback(cfg) is not None


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_real_axolotl_train_with_the_plugin(tiny_model: Path, tmp_path: Path) -> None:
    """`axolotl train` on CPU: the hooks fire, the files hold real numbers, then export."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = {
        "base_model": str(tiny_model),
        "datasets": [
            {
                "path": str(QA),
                "type": "chat_template",
                "chat_template": "tokenizer_default",
                "field_messages": "messages",
                "roles_to_train": ["assistant"],
            }
        ],
        "dataset_prepared_path": str(run_dir / "prepared"),
        "dataset_num_proc": 1,
        "val_set_size": 0,
        "output_dir": str(run_dir / "output"),
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_target_linear": True,
        "lora_mlp_kernel": False,
        "lora_qkv_kernel": False,
        "lora_o_kernel": False,
        "lora_embedding_kernel": False,
        "sequence_len": 256,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "num_epochs": 1,
        "max_steps": 3,
        "optimizer": "adamw_torch",
        "learning_rate": 1e-3,
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "attn_implementation": "sdpa",
        "gradient_checkpointing": False,
        "dataloader_pin_memory": False,
        "logging_steps": 1,
        "save_steps": 3,
        "plugins": ["axo_helper.plugin.AxoHelperPlugin"],
        "axo_helper_run_dir": str(run_dir),
    }
    (run_dir / "axolotl.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "axolotl.cli.train", "axolotl.yml"],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    lines = read_stream(run_dir)
    steps = [ln for ln in lines if ln["event"] == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    for s in steps:
        assert s["max_steps"] == 3
        assert 0 < s["loss"] < 20 and s["learning_rate"] > 0
        assert s["step_time_s"] > 0 and s["tokens"] > 0 and s["tokens_per_s"] > 0
        assert s["peak_memory_gib"] > 0.1  # process RSS: torch alone is hundreds of MB
    # post_train runs twice in Axolotl 0.19: the end-of-run work happened once.
    assert [ln["event"] for ln in lines].count("end") == 1

    summary = json.loads((run_dir / pl.METRICS_SUMMARY).read_text())
    assert summary["steps"] == 3 and summary["device_type"] == "cpu"
    assert summary["peak_memory_kind"] == "process_max_rss"
    assert summary["tokens_per_s"] > 0 and summary["final_loss"] == steps[-1]["loss"]
    assert summary["calibration"]["recorded"] is False  # CPU runs do not calibrate
    assert CalibrationStore().measurements() == []

    from axo_helper.export import export_run, verify_export

    result = export_run(run_dir)
    assert result.variants == ("adapter", "merged") and verify_export(run_dir) == []
    assert "3" in (run_dir / "adapter" / "README.md").read_text()
