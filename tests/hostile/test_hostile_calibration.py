"""A calibration store fed absurd, binary or corrupt input: refused rows, one warning,
a working `clear --yes`, CSV cells a spreadsheet cannot run."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from axo_helper.calibration import COLUMNS, CalibrationStore, Measurement
from axo_helper.errors import AxoHelperError

CLI = Callable[..., Result]
PLAN = ["plan", "--gpu", "rtx4090", "--model", "meta-llama/Llama-3.1-8B", "--json"]


def _row(**values: object) -> dict[str, object]:
    m = Measurement(
        gpu="rtx4090", family="llama", model="meta-llama/Llama-3.1-8B", method="lora",
        sequence_len=2048, micro_batch_size=1, gradient_checkpointing=True,
        attn_implementation="sdpa", optimizer="adamw_torch_fused", num_gpus=1,
        distributed="none", predicted_gib=10.0, measured_gib=10.0,
    )  # fmt: skip
    return {**asdict(m), **values}


def _csv(tmp_path: Path, *rows: dict[str, object]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "cal.csv"
    path.write_text(buf.getvalue())
    return path


def test_an_absurd_row_is_refused_and_the_plan_does_not_change(cli: CLI, tmp_path: Path) -> None:
    before = json.loads(cli(*PLAN).stdout)
    absurd = _csv(tmp_path, _row(predicted_gib=1e-308, measured_gib=1e308))
    res = cli("calibration", "import", str(absurd))
    assert res.exit_code == 0, res.output
    assert "Imported 0" in res.stdout and "CSV line 2 skipped: predicted_gib" in res.stderr
    assert CalibrationStore().measurements() == []
    after = json.loads(cli(*PLAN).stdout)
    assert after["method"] == before["method"]
    assert after["calibrated_from"] == 0


def test_a_ratio_far_outside_any_calibration_is_refused(tmp_path: Path) -> None:
    store = CalibrationStore()
    with _csv(tmp_path, _row(measured_gib=80.0), _row(measured_gib=11.0)).open() as fh:
        assert store.import_csv(fh) == 1
    assert any("measured/predicted is 8" in w for w in store.warnings)


def test_a_binary_file_to_import_is_a_message(cli: CLI, tmp_path: Path) -> None:
    binary = tmp_path / "x.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    res = cli("calibration", "import", str(binary))
    assert res.exit_code == 1
    assert "not a CSV of measurements" in res.stderr and "hint:" in res.stderr
    assert "internal error" not in res.output


def test_formula_cells_are_exported_as_text_and_imported_back(cli: CLI, tmp_path: Path) -> None:
    evil = "=cmd|' /C calc'!A0"
    CalibrationStore().add(Measurement(**{**_row(model=evil)}))  # type: ignore[arg-type]
    out = tmp_path / "out.csv"
    assert cli("calibration", "export", "-o", str(out)).exit_code == 0
    (row,) = list(csv.DictReader(out.open()))
    assert row["model"] == "'" + evil
    cli("calibration", "clear", "--yes")
    assert cli("calibration", "import", str(out)).exit_code == 0
    (back,) = CalibrationStore().measurements()
    assert back.model == evil


def test_a_corrupt_store_warns_once_and_clear_yes_recovers(cli: CLI, _isolated_home: Path) -> None:
    db = _isolated_home / "calibration.sqlite3"
    db.write_bytes(b"this is not sqlite" * 100)
    plan = cli(*PLAN)
    assert plan.exit_code == 0, plan.output
    assert plan.stderr.count("not a readable SQLite database") == 1
    assert "--yes" in plan.stderr and "--force" not in plan.stderr
    cleared = cli("calibration", "clear", "--yes")
    assert cleared.exit_code == 0, cleared.output
    assert "moved to" in cleared.stderr
    assert list(_isolated_home.glob("calibration.sqlite3.unreadable-*"))
    assert cli("calibration", "list").exit_code == 0


def test_a_store_that_cannot_be_created_leaves_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CalibrationStore(tmp_path / "cal.sqlite3")
    real = sqlite3.connect

    class DiskFull(sqlite3.Connection):
        def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("database or disk is full")

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real(*args, factory=DiskFull, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(AxoHelperError, match="cannot create the calibration store") as info:
        store.add(Measurement(**_row()))  # type: ignore[arg-type]
    assert info.value.hint and "space" in info.value.hint
    assert not list(tmp_path.iterdir())  # no 0-byte (or header-only) database left
