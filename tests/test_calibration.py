"""The SQLite calibration store and its conservative correction."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from axo_helper.calibration import (
    MAX_FACTOR,
    CalibrationStore,
    Measurement,
    correction_factor,
    default_db_path,
)
from axo_helper.specs import LinearShape, MemoryBreakdown, ModelSpec, TrainSetup

MODEL = ModelSpec(
    name="tiny",
    model_type="llama",
    architecture="LlamaForCausalLM",
    family="llama",
    hidden_size=64,
    intermediate_size=128,
    num_layers=2,
    num_attention_heads=4,
    num_kv_heads=4,
    head_dim=16,
    vocab_size=512,
    tie_word_embeddings=False,
    max_position_embeddings=512,
    total_params=100_000,
    active_params=100_000,
    linears=(LinearShape("q_proj", 64, 64),),
)


def measurement(
    ratio: float,
    *,
    gpu: str = "NVIDIA GeForce RTX 4090",
    method: str = "lora",
    tokens: float | None = 1000.0,
) -> Measurement:
    return Measurement(
        gpu=gpu,
        family="llama",
        model="tiny",
        method=method,
        sequence_len=512,
        micro_batch_size=2,
        gradient_checkpointing=True,
        attn_implementation="sdpa",
        optimizer="adamw_torch_fused",
        num_gpus=1,
        distributed="none",
        predicted_gib=10.0,
        measured_gib=10.0 * ratio,
        tokens_per_s=tokens,
    )


def breakdown(total: float) -> MemoryBreakdown:
    return MemoryBreakdown(
        weights_gib=total * 0.5,
        trainable_state_gib=total * 0.1,
        activations_gib=total * 0.2,
        logits_gib=total * 0.1,
        overhead_gib=total * 0.1,
        total_gib=total,
        trainable_params=1,
    )


def test_store_lives_under_axo_helper_home(_isolated_home: Path) -> None:
    assert default_db_path().parent == _isolated_home


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ([], 1.0),
        ([1.2], 1.2),
        ([0.8, 1.1], 1.1),
        ([0.8], 0.9),
        ([0.6, 0.8], 0.9),
        ([5.0], MAX_FACTOR),
    ],
)
def test_correction_factor_is_conservative(ratios: list[float], expected: float) -> None:
    assert correction_factor(ratios) == pytest.approx(expected)


def test_calibration_scales_matching_setups_only() -> None:
    store = CalibrationStore()
    store.add(measurement(1.2))
    store.add(measurement(3.0, gpu="NVIDIA A100-SXM4-80GB"))
    setup = TrainSetup(model=MODEL, method="lora")
    fixed = store.calibration("nvidia geforce RTX 4090", MODEL.family).correct(
        setup, breakdown(10.0)
    )
    assert fixed.total_gib == pytest.approx(12.0)
    parts = (
        fixed.weights_gib
        + fixed.trainable_state_gib
        + fixed.activations_gib
        + fixed.logits_gib
        + fixed.overhead_gib
    )
    assert parts == pytest.approx(fixed.total_gib)
    assert any("calibrated from 1 run" in n for n in fixed.notes)
    # Another method or GPU model is left alone.
    untouched = store.calibration("NVIDIA GeForce RTX 4090", MODEL.family).correct(
        TrainSetup(model=MODEL, method="qlora"), breakdown(10.0)
    )
    assert untouched.total_gib == pytest.approx(10.0)
    none = store.calibration(None, MODEL.family)
    assert none.correct(setup, breakdown(10.0)).total_gib == pytest.approx(10.0)


def test_tokens_per_s_from_same_setup() -> None:
    store = CalibrationStore()
    store.add(measurement(1.0, tokens=900.0))
    store.add(measurement(1.0, tokens=1100.0))
    c = store.calibration("RTX 4090", MODEL.family)
    same = TrainSetup(model=MODEL, method="lora", sequence_len=512, micro_batch_size=2)
    other = TrainSetup(model=MODEL, method="lora", sequence_len=1024, micro_batch_size=2)
    assert c.tokens_per_s(same) in (900.0, 1100.0)
    assert c.tokens_per_s(other) is None


def test_corrupt_and_foreign_rows_are_skipped_with_a_warning() -> None:
    store = CalibrationStore()
    store.add(measurement(1.1))
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET measured_gib = 'lots' WHERE id = 1")
        conn.execute(
            "INSERT INTO runs (schema_version, gpu_key, gpu, family, model, method, sequence_len,"
            " micro_batch_size, gradient_checkpointing, attn_implementation, optimizer, num_gpus,"
            " distributed, predicted_gib, measured_gib) VALUES"
            " (99, 'x', 'x', 'llama', 'm', 'lora', 1, 1, 1, 'sdpa', 'adamw', 1, 'none', 1, 1)"
        )
    store.add(measurement(1.3))
    rows = store.measurements()
    assert [round(m.ratio, 2) for m in rows] == [1.3]
    assert len(store.warnings) == 2
    assert any("schema version" in w for w in store.warnings)


def test_not_a_database_is_a_clear_error_and_planning_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "calibration.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    store = CalibrationStore(bad)
    calibration = store.calibration("RTX 4090", MODEL.family)
    fixed = calibration.correct(TrainSetup(model=MODEL), breakdown(10.0))
    assert fixed.total_gib == pytest.approx(10.0)
    assert any("not a readable SQLite database" in w for w in store.warnings)
    assert any("not a readable SQLite database" in w for w in calibration.warnings)


def _writer(path: str, n: int) -> None:
    store = CalibrationStore(Path(path))
    for _ in range(n):
        store.add(measurement(1.05))


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path: Path) -> None:
    path = tmp_path / "cal.sqlite3"
    CalibrationStore(path).measurements()  # nothing yet; must not create errors
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 25)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = CalibrationStore(path)
    assert len(store.measurements()) == 50
    assert store.warnings == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_cli_list_export_import_clear(tmp_path: Path, cli: Callable[..., Result]) -> None:
    store = CalibrationStore()
    store.add(measurement(1.2))
    listed = cli("calibration", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert '"measured_gib": 12.0' in listed.output

    out = tmp_path / "cal.csv"
    assert cli("calibration", "export", "-o", str(out)).exit_code == 0
    assert out.read_text().splitlines()[0].startswith("gpu,family,model")
    again = cli("calibration", "export", "-o", str(out))
    assert again.exit_code == 2 and "already exists" in again.output

    cleared = cli("calibration", "clear", "--yes")
    assert cleared.exit_code == 0 and "Deleted 1" in cleared.output
    assert store.measurements() == []
    no_confirm = cli("calibration", "clear")
    assert no_confirm.exit_code == 2

    imported = cli("calibration", "import", str(out))
    assert imported.exit_code == 0 and "Imported 1" in imported.output
    (m,) = store.measurements()
    assert m.source == "import" and m.ratio == pytest.approx(1.2)


def test_a_measurement_20_percent_over_makes_the_next_plan_lighter() -> None:
    from axo_helper import core

    args: dict[str, Any] = {
        "gpu": "rtx4090",
        "model": "Qwen/Qwen2.5-1.5B",
        "data": None,
        "method": "lora",
        "seq_len": 2048,
    }
    first = core.make_plan(core.PlanRequest(**args))
    assert first.calibrated_from == 0
    CalibrationStore().add(
        Measurement.from_setup(
            first.setup,
            gpu="NVIDIA GeForce RTX 4090",  # as NVML names it; the plan used a profile
            predicted_gib=first.memory.total_gib,
            measured_gib=first.memory.total_gib * 1.2,
        )
    )
    second = core.make_plan(core.PlanRequest(**args))
    assert second.calibrated_from == 1
    assert second.memory.total_gib <= second.budget_gib
    lighter = (
        second.micro_batch_size < first.micro_batch_size
        or (second.setup.gradient_checkpointing and not first.setup.gradient_checkpointing)
        or second.setup.optimizer != first.setup.optimizer
    )
    assert lighter, (first.setup, second.setup)
    # Same effective batch: accumulation makes up for the smaller micro batch.
    assert second.effective_batch == first.effective_batch
    # Uncalibrated planning ignores the store.
    assert core.make_plan(core.PlanRequest(**args, use_calibration=False)).setup == first.setup
