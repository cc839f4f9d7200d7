"""`axo-helper gpus`: the table, --json, warnings on stderr, no driver, --profiles."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result
from fake_nvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeNVML, install, two_gpus

from axo_helper import hardware


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNVML:
    """Two GPUs behind the NVML seam; CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER unset."""
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    return install(monkeypatch, two_gpus())


def test_gpus_table(nvml: FakeNVML, cli: Callable[..., Result]) -> None:
    result = cli("gpus")
    assert result.exit_code == 0, result.output
    for text in (
        "NVIDIA GeForce RTX 4090",
        "NVIDIA GeForce RTX 3090",
        "23.99",
        "8.9",
        "550.54.15",
        "rtx3090",
    ):
        assert text in result.stdout


def test_gpus_json_shape(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    result = cli("gpus", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and [r["index"] for r in rows] == [1, 0]
    first = rows[0]
    assert set(first) >= {
        "index",
        "name",
        "memory_total_gib",
        "memory_free_gib",
        "compute_capability",
        "driver",
    }
    assert first["name"] == "NVIDIA GeForce RTX 3090"
    assert first["memory_total_gib"] == 24.0 and first["memory_free_gib"] == pytest.approx(
        17.71, abs=0.01
    )
    assert first["compute_capability"] == "8.6" and first["driver"] == "550.54.15"


def test_gpus_warnings_go_to_stderr(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,7")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    result = cli("gpus", "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 1
    assert "warning: CUDA_VISIBLE_DEVICES entry '7'" in result.stderr


@pytest.mark.parametrize("args", [["gpus"], ["gpus", "--json"]])
def test_gpus_without_driver_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, args: list[str], cli: Callable[..., Result]
) -> None:
    install(monkeypatch, FakeNVML([], init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    result = cli(*args)
    assert result.exit_code == 1
    # --json still prints valid JSON (no GPUs) on stdout; the reason goes to stderr
    assert result.stdout == ("[]\n" if "--json" in args else "")
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: no NVIDIA GPU found (NVML: NVML Shared Library Not Found)"
    assert lines[1].startswith("  hint: ")
    assert "Traceback" not in result.output


def test_gpus_profiles_lists_every_profile(cli: Callable[..., Result]) -> None:
    as_json = cli("gpus", "--profiles", "--json")
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert [r["key"] for r in rows] == [r["key"] for r in hardware.list_profiles()]
    table = cli("gpus", "--profiles")
    assert table.exit_code == 0
    assert all(key in table.stdout for key in ("rtx4090", "h100-sxm", "mi300x"))
