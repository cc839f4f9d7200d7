"""Detection through a fake NVML: every field, CUDA_VISIBLE_DEVICES, `auto`'s warnings."""

from __future__ import annotations

import pytest
from fake_nvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    FakeGPU,
    FakeNVML,
    install,
    two_gpus,
)

from axo_helper import hardware
from axo_helper.errors import EXIT_FAILURE, HardwareError


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNVML:
    """Two GPUs behind the NVML seam; CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER unset."""
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    return install(monkeypatch, two_gpus())


def test_detect_reads_every_field(nvml: FakeNVML) -> None:
    hw = hardware.detect()
    assert hw.source == "nvml" and hw.num_gpus == 2
    g0, g1 = hw.gpus
    assert (g0.index, g0.name, g0.driver) == (0, "NVIDIA GeForce RTX 4090", "550.54.15")
    assert g0.memory_gib == pytest.approx(24564 / 1024)
    assert g0.free_gib == pytest.approx((24564 - 302) / 1024)
    assert g0.compute_capability == (8, 9)
    assert g0.uuid == "GPU-4090aaaa-1111-2222-3333-444455556666"
    # a known name brings the profile's figures
    assert (g0.profile, g0.tflops_bf16, g0.bf16, g0.flash_attention_2) == (
        "rtx4090",
        165.2,
        True,
        True,
    )
    assert (g1.index, g1.profile, g1.compute_capability) == (1, "rtx3090", (8, 6))
    assert nvml.init_calls == 1 and nvml.shutdown_calls == 1 and not nvml.initialized


def test_detect_decodes_bytes_from_old_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNVML([FakeGPU("NVIDIA L4", 23034)], driver=b"535.104.05"))
    assert hardware.detect().gpus[0].driver == "535.104.05"


@pytest.mark.parametrize(
    ("name", "cc", "bf16"),
    [
        ("NVIDIA Mystery 9000", (9, 0), True),
        ("Quadro RTX 8000", (7, 5), False),
        ("Odd GPU", None, False),
    ],
)
def test_unknown_card_derives_capability_from_cc(monkeypatch: pytest.MonkeyPatch, name: str,
                                                 cc: tuple[int, int] | None, bf16: bool) -> None:  # fmt: skip
    install(monkeypatch, FakeNVML([FakeGPU(name, 49152, cc=cc)]))
    g = hardware.detect().gpus[0]
    assert g.profile is None and g.tflops_bf16 is None
    assert (g.bf16, g.flash_attention_2, g.compute_capability) == (bf16, bf16, cc)


@pytest.mark.parametrize(
    ("total_mib", "profile"), [(10240, "rtx3080-10gb"), (12288, "rtx3080-12gb")]
)
def test_same_nvml_name_is_told_apart_by_memory(monkeypatch: pytest.MonkeyPatch, total_mib: int,
                                                profile: str) -> None:  # fmt: skip
    install(monkeypatch, FakeNVML([FakeGPU("NVIDIA GeForce RTX 3080", total_mib, cc=(8, 6))]))
    assert hardware.detect().gpus[0].profile == profile


@pytest.mark.parametrize(
    ("visible", "indices"),
    [
        ("1", [1]),
        ("1,0", [1, 0]),
        (" 0 , 1 ", [0, 1]),
        ("GPU-3090bbbb", [1]),
        ("GPU-4090aaaa-1111-2222-3333-444455556666,1", [0, 1]),
        ("0,0", [0]),
    ],
)
def test_cuda_visible_devices_filters_and_orders(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch, visible: str, indices: list[int]
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    hw = hardware.detect()
    assert [g.index for g in hw.gpus] == indices
    assert hw.warnings == ()


@pytest.mark.parametrize("visible", ["0,7,1", "0,-1,1", "0,GPU-ffff,1"])
def test_cuda_visible_devices_stops_at_an_invalid_entry(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch, visible: str
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    hw = hardware.detect()
    assert [g.index for g in hw.gpus] == [0]
    assert len(hw.warnings) == 1 and "names no GPU" in hw.warnings[0]


@pytest.mark.parametrize("visible", ["", "  ", "-1", "9"])
def test_cuda_visible_devices_hiding_everything_is_no_gpu(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch, visible: str
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(HardwareError, match="no NVIDIA GPU visible") as info:
        hardware.detect()
    assert info.value.exit_code == EXIT_FAILURE
    assert nvml.shutdown_calls == 1


def test_mig_slice_is_refused_with_a_hint(nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-4f2c5e7a-0000-0000-0000-000000000000")
    with pytest.raises(HardwareError, match="MIG") as info:
        hardware.detect()
    assert info.value.hint and "--gpu" in info.value.hint


def test_mixed_models_warn_about_cuda_device_order(
    nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    hw = hardware.detect()
    assert any("CUDA_DEVICE_ORDER" in w for w in hw.warnings)


def test_auto_plans_against_free_memory_and_warns_about_busy_gpus(nvml: FakeNVML) -> None:
    hw = hardware.resolve("auto", nodes=2)
    assert hw.source == "nvml" and hw.use_free_memory and hw.nodes == 2
    # GPU 1 has 6 GiB held by another process: it is the smallest budget
    assert hw.gpu is not None and hw.gpu.index == 1
    assert hw.budget_gib == pytest.approx((24576 - 6144 - 300) / 1024)
    busy = [w for w in hw.warnings if "other processes hold" in w]
    # the idle 4090's driver reserve (300 MiB, reported apart by memory v2) is not "busy"
    assert (
        len(busy) == 1
        and busy[0].startswith("GPU 1 (NVIDIA GeForce RTX 3090)")
        and "6.0 GiB" in busy[0]
    )
    differ = [w for w in hw.warnings if "visible GPUs differ" in w]
    assert len(differ) == 1 and "GPU 1 (NVIDIA GeForce RTX 3090, 17.7 GiB free)" in differ[0]


def test_auto_on_identical_idle_gpus_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGPU("NVIDIA H100 80GB HBM3", 81559, cc=(9, 0), uuid=f"GPU-{i}", reserved_mib=500)
            for i in range(8)]  # fmt: skip
    install(monkeypatch, FakeNVML(gpus))
    hw = hardware.resolve("auto")
    assert hw.num_gpus == 8 and hw.warnings == ()
    assert {g.profile for g in hw.gpus} == {"h100-sxm"}


def test_auto_falls_back_to_memory_v1_on_old_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        FakeNVML([FakeGPU("NVIDIA A10G", 23028, used_mib=1024, cc=(8, 6))], memory_v2=False),
    )
    hw = hardware.resolve("auto")
    assert hw.budget_gib == pytest.approx((23028 - 1024) / 1024)
    assert any("1.0 GiB" in w for w in hw.warnings)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"),
        (NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"),
    ],
)
def test_no_driver_is_a_one_line_hardware_error(
    monkeypatch: pytest.MonkeyPatch, code: int, text: str
) -> None:
    fake = install(monkeypatch, FakeNVML([], init_error=code))
    with pytest.raises(HardwareError) as info:
        hardware.resolve("auto")
    assert info.value.message == f"no NVIDIA GPU found (NVML: {text})"
    assert info.value.exit_code == EXIT_FAILURE
    assert (
        info.value.hint and "--gpu rtx4090" in info.value.hint and "--gpu 24GB" in info.value.hint
    )
    assert fake.shutdown_calls == 0  # never initialised, so nothing to shut down


def test_auto_with_allow_cpu_plans_for_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNVML([], init_error=NVML_ERROR_DRIVER_NOT_LOADED))
    hw = hardware.resolve("auto", allow_cpu=True)
    assert hw.is_cpu and hw.source == "cpu"
    assert len(hw.warnings) == 1 and "no NVIDIA GPU found" in hw.warnings[0]


def test_zero_devices_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install(monkeypatch, FakeNVML([]))
    with pytest.raises(HardwareError, match="0 devices"):
        hardware.detect()
    assert fake.shutdown_calls == 1


@pytest.mark.parametrize(
    "fn", ["nvmlDeviceGetName", "nvmlDeviceGetMemoryInfo", "nvmlSystemGetDriverVersion"]
)
def test_failure_while_reading_still_shuts_nvml_down(
    monkeypatch: pytest.MonkeyPatch, fn: str
) -> None:
    fake = install(monkeypatch, two_gpus(fail_on=fn))
    with pytest.raises(HardwareError, match="reading the GPUs through NVML failed"):
        hardware.detect()
    assert fake.shutdown_calls == 1


def test_optional_readings_may_be_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, two_gpus(fail_on="nvmlDeviceGetUUID"))
    hw = hardware.detect()
    assert [g.uuid for g in hw.gpus] == [None, None] and hw.gpus[0].profile == "rtx4090"


def test_the_real_seam_returns_pynvml_and_detect_is_clean_either_way() -> None:
    module = hardware._load_nvml()
    assert module.__name__ == "pynvml" and hasattr(module, "nvmlInit")
    try:
        hw = hardware.detect()
    except HardwareError as exc:  # this machine: no driver
        assert exc.message.startswith("no NVIDIA GPU")
    else:  # a machine with a GPU
        assert hw.num_gpus >= 1 and all(g.memory_gib > 0 for g in hw.gpus)
