"""GPU specs (`--gpu`), the shipped GPU profiles, and detection through a fake NVML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_nvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    FakeGPU,
    FakeNVML,
    two_gpus,
)
from hypothesis import given
from hypothesis import strategies as st

from axo_helper import hardware
from axo_helper.cli import cli
from axo_helper.errors import EXIT_FAILURE, EXIT_USAGE, GPUSpecError, HardwareError
from axo_helper.resources import load_preset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNVML:
    """Two GPUs behind the NVML seam; CUDA_VISIBLE_DEVICES unset."""
    fake = two_gpus()
    monkeypatch.setattr(hardware, "_load_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    return fake


def use(monkeypatch: pytest.MonkeyPatch, fake: FakeNVML) -> FakeNVML:
    monkeypatch.setattr(hardware, "_load_nvml", lambda: fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


# --------------------------------------------------------------------------- spec forms
@pytest.mark.parametrize(
    ("spec", "count", "profile", "memory", "source"),
    [
        # profiles, matched loosely
        ("rtx4090", 1, "rtx4090", 23.99, "profile"),
        ("RTX 4090", 1, "rtx4090", 23.99, "profile"),
        ("4090", 1, "rtx4090", 23.99, "profile"),
        ("  rtx-4090 ", 1, "rtx4090", 23.99, "profile"),
        ("NVIDIA GeForce RTX 4090", 1, "rtx4090", 23.99, "profile"),
        ("a100-80gb", 1, "a100-80gb", 79.35, "profile"),
        ("A100 80GB", 1, "a100-80gb", 79.35, "profile"),
        ("a100 80g", 1, "a100-80gb", 79.35, "profile"),
        ("NVIDIA A100-SXM4-80GB", 1, "a100-80gb", 79.35, "profile"),
        ("A100 80GB PCIe", 1, "a100-80gb", 79.35, "profile"),
        ("a100-40gb", 1, "a100-40gb", 39.59, "profile"),
        ("h100", 1, "h100-sxm", 79.65, "profile"),
        ("nvidia h100 80gb hbm3", 1, "h100-sxm", 79.65, "profile"),
        ("H100 PCIe", 1, "h100-pcie", 79.65, "profile"),
        ("h100-nvl", 1, "h100-nvl", 93.58, "profile"),
        ("a6000", 1, "rtx-a6000", 47.99, "profile"),
        ("RTX A6000", 1, "rtx-a6000", 47.99, "profile"),
        ("NVIDIA RTX 6000 Ada Generation", 1, "rtx6000-ada", 47.99, "profile"),
        ("Tesla T4", 1, "t4", 14.75, "profile"),
        ("Tesla V100-SXM2-16GB", 1, "v100-16gb", 15.78, "profile"),
        ("L40S", 1, "l40s", 44.99, "profile"),
        ("a10g", 1, "a10g", 22.49, "profile"),
        ("AMD Instinct MI300X", 1, "mi300x", 191.69, "profile"),
        ("mi250", 1, "mi250", 63.98, "profile"),
        # sizes: GB and GiB both mean GiB
        ("24GB", 1, None, 24.0, "size"),
        ("24GiB", 1, None, 24.0, "size"),
        ("80g", 1, None, 80.0, "size"),
        ("12 gb", 1, None, 12.0, "size"),
        ("22.5GB", 1, None, 22.5, "size"),
        # a count before a profile or a size
        ("2xa100-80gb", 2, "a100-80gb", 79.35, "profile"),
        ("8x h100", 8, "h100-sxm", 79.65, "profile"),
        ("4x24GB", 4, None, 24.0, "size"),
        ("2 x rtx4090", 2, "rtx4090", 23.99, "profile"),
        ("2X RTX 4090", 2, "rtx4090", 23.99, "profile"),
        ("64x80GB", 64, None, 80.0, "size"),
    ],
)
def test_spec_forms(spec: str, count: int, profile: str | None, memory: float, source: str) -> None:
    hw = hardware.resolve(spec)
    assert hw.num_gpus == count
    assert hw.source == source
    assert hw.use_free_memory is False
    assert {g.profile for g in hw.gpus} == {profile}
    assert hw.budget_gib == pytest.approx(memory)


def test_cpu_and_nodes() -> None:
    hw = hardware.resolve("cpu")
    assert hw.is_cpu and hw.source == "cpu" and hw.budget_gib == 0.0
    multi = hardware.resolve("8xh100-sxm", nodes=4)
    assert multi.nodes == 4 and multi.world_size == 32


def test_profile_gpu_carries_its_capabilities() -> None:
    t4 = hardware.resolve("t4").gpus[0]
    assert (t4.bf16, t4.flash_attention_2, t4.compute_capability) == (False, False, (7, 5))
    a100 = hardware.resolve("a100-80gb").gpus[0]
    assert (a100.bf16, a100.flash_attention_2, a100.compute_capability) == (True, True, (8, 0))
    assert a100.tflops_bf16 == 312.0
    mi300 = hardware.resolve("mi300x").gpus[0]
    assert mi300.vendor == "amd" and mi300.compute_capability is None and mi300.flash_attention_2


def test_size_assumes_a_modern_card_and_says_so() -> None:
    hw = hardware.resolve("24GB")
    g = hw.gpus[0]
    assert (g.bf16, g.flash_attention_2, g.compute_capability, g.tflops_bf16) == (
        True,
        True,
        None,
        None,
    )
    assert g.vendor == "unknown"
    assert len(hw.warnings) == 1 and "assumed" in hw.warnings[0]


@pytest.mark.parametrize(
    ("spec", "default", "others"),
    [
        ("h100", "h100-sxm", ["h100-pcie", "h100-nvl"]),
        ("a100", "a100-80gb", ["a100-40gb"]),
        ("3080", "rtx3080-10gb", ["rtx3080-12gb"]),
    ],
)
def test_ambiguous_short_name_picks_default_and_warns(
    spec: str, default: str, others: list[str]
) -> None:
    hw = hardware.resolve(spec)
    assert hw.gpus[0].profile == default
    assert len(hw.warnings) == 1
    assert all(o in hw.warnings[0] for o in others)


def test_exact_profile_names_do_not_warn() -> None:
    assert hardware.resolve("rtx4090").warnings == ()
    assert hardware.resolve("h100-sxm").warnings == ()


@pytest.mark.parametrize(
    ("spec", "expected_near"),
    [("rtx4091", "rtx4090"), ("a100-90gb", "a100-80gb"), ("h1000", "h100-sxm"), ("l40x", "l40")],
)
def test_unknown_name_lists_closest_profiles(spec: str, expected_near: str) -> None:
    with pytest.raises(GPUSpecError) as info:
        hardware.resolve(spec)
    err = info.value
    assert err.exit_code == EXIT_USAGE
    assert f"unknown GPU {spec!r}" in err.message
    listed = err.message.split("closest profiles: ")[1].split(", ")
    assert 3 <= len(listed) <= 5
    assert expected_near in listed
    assert err.hint and "--profiles" in err.hint


def test_unknown_name_with_no_near_match_still_suggests_three() -> None:
    with pytest.raises(GPUSpecError) as info:
        hardware.resolve("banana")
    listed = info.value.message.split("closest profiles: ")[1].split(", ")
    assert len(listed) == 3


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("0GB", "more than 0"),
        ("-4GB", "more than 0"),
        ("0.0GiB", "more than 0"),
        ("24TB", "not TB"),
        ("512MB", "not MB"),
        ("4096GB", "no single GPU"),
        ("x4090", "no GPU count"),
        ("x 24GB", "no GPU count"),
        ("0xh100", "between 1 and 64"),
        ("-2xh100", "between 1 and 64"),
        ("1000x h100", "between 1 and 64"),
        ("65x24GB", "between 1 and 64"),
        ("4x", "no GPU after the count"),
        ("24", "needs a unit"),
        ("2xauto", "count cannot go with"),
        ("", "empty"),
        ("   ", "empty"),
        ("2x0GB", "more than 0"),
        ("2xbanana", "unknown GPU"),
    ],
)
def test_malformed_specs_are_usage_errors(spec: str, says: str) -> None:
    with pytest.raises(GPUSpecError) as info:
        hardware.resolve(spec)
    assert info.value.exit_code == EXIT_USAGE
    assert says in info.value.message
    assert info.value.hint  # every error says what to do


@pytest.mark.parametrize("nodes", [0, -1])
def test_bad_node_count(nodes: int) -> None:
    with pytest.raises(GPUSpecError, match="--nodes"):
        hardware.resolve("rtx4090", nodes=nodes)


def test_match_profile_helper() -> None:
    assert hardware.match_profile("RTX 4090").profile == "rtx4090"
    with pytest.raises(GPUSpecError):
        hardware.match_profile("rtx9999")


@given(st.floats(min_value=0.01, max_value=1024.0, allow_nan=False).map(lambda v: round(v, 2)))
def test_any_sane_size_round_trips(value: float) -> None:
    for unit in ("GB", "GiB", "g"):
        hw = hardware.resolve(f"{value}{unit}")
        assert hw.budget_gib == pytest.approx(value)


@given(
    st.integers(min_value=1, max_value=64),
    st.sampled_from(["rtx4090", "h100-sxm", "24GB", "mi300x"]),
)
def test_count_prefix_multiplies(count: int, name: str) -> None:
    single = hardware.resolve(name)
    hw = hardware.resolve(f"{count}x{name}")
    assert hw.num_gpus == count
    assert hw.budget_gib == single.budget_gib


# --------------------------------------------------------------------------- the presets file
REQUIRED = [
    "rtx3060-12gb", "rtx3070", "rtx3080-10gb", "rtx3080-12gb", "rtx3090", "rtx3090-ti",
    "rtx4060-ti-16gb", "rtx4070-ti-super", "rtx4080", "rtx4090", "rtx5080", "rtx5090",
    "rtx-a4000", "rtx-a4500", "rtx-a5000", "rtx-a6000", "rtx4000-ada", "rtx5000-ada",
    "rtx6000-ada", "t4", "v100-16gb", "v100-32gb", "a10", "a10g", "l4", "l40", "l40s",
    "a100-40gb", "a100-80gb", "h100-pcie", "h100-sxm", "h100-nvl", "h200", "b200",
    "mi210", "mi250", "mi300x",
]  # fmt: skip


def test_every_profile_is_well_formed() -> None:
    raw = load_preset("gpus.yaml")["profiles"]
    rows = hardware.list_profiles()
    assert len(rows) == len(raw) >= 30
    keys = [r["key"] for r in rows]
    assert sorted(set(keys)) == sorted(keys)
    assert set(REQUIRED) <= set(keys)
    allowed = {"key", "name", "aliases", "memory_gib", "compute_capability", "bf16",
               "flash_attention_2", "tflops_bf16", "vendor", "arch", "notes"}  # fmt: skip
    for entry in raw:
        assert set(entry) <= allowed, f"{entry['key']}: unknown fields {set(entry) - allowed}"
    for r in rows:
        where = r["key"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", where)
        assert isinstance(r["name"], str) and r["name"]
        assert all(isinstance(a, str) and a for a in r["aliases"]), where
        assert isinstance(r["memory_gib"], float) and 4 <= r["memory_gib"] <= 300, where
        assert isinstance(r["tflops_bf16"], float) and 10 <= r["tflops_bf16"] <= 5000, where
        assert isinstance(r["bf16"], bool) and isinstance(r["flash_attention_2"], bool)
        assert r["vendor"] in ("nvidia", "amd")
        if r["vendor"] == "nvidia":
            cc = r["compute_capability"]
            assert isinstance(cc, str) and re.fullmatch(r"\d{1,2}\.\d", cc), where
            modern = tuple(int(x) for x in cc.split(".")) >= (8, 0)
            # bf16 and FlashAttention-2 both start at Ampere (cc 8.0).
            assert r["bf16"] == modern and r["flash_attention_2"] == modern, where
        else:
            assert r["compute_capability"] is None and r["arch"], where
            assert r["bf16"] and r["flash_attention_2"], where


def test_profile_memory_is_the_driver_figure_not_the_marketing_one() -> None:
    rows = {r["key"]: r["memory_gib"] for r in hardware.list_profiles()}
    assert rows["rtx4090"] == 23.99
    assert rows["h100-sxm"] == 79.65
    # the usable figure is never above what the card is sold as
    for key, sold in {"rtx4090": 24, "a100-80gb": 80, "h100-sxm": 80, "l4": 24, "t4": 16}.items():
        assert rows[key] <= sold


@pytest.mark.parametrize("key", REQUIRED)
def test_every_profile_resolves_by_key_and_by_name(key: str) -> None:
    by_key = hardware.resolve(key)
    assert by_key.gpus[0].profile == key and by_key.warnings == ()
    name = by_key.gpus[0].name
    assert hardware.resolve(name).gpus[0].profile == key


def test_docs_list_every_profile() -> None:
    text = (REPO / "docs" / "gpus.md").read_text(encoding="utf-8")
    missing = [r["key"] for r in hardware.list_profiles() if f"`{r['key']}`" not in text]
    assert missing == []


def test_naming_a_gpu_imports_neither_nvml_nor_torch() -> None:
    code = (
        "import sys; from axo_helper import hardware; hardware.resolve('2xrtx4090'); "
        "hardware.resolve('24GB'); "
        "print(sorted(m for m in ('pynvml', 'torch', 'transformers', 'axolotl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- detection (fake NVML)
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
    use(monkeypatch, FakeNVML([FakeGPU("NVIDIA L4", 23034)], driver=b"535.104.05"))
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
    use(monkeypatch, FakeNVML([FakeGPU(name, 49152, cc=cc)]))
    g = hardware.detect().gpus[0]
    assert g.profile is None and g.tflops_bf16 is None
    assert (g.bf16, g.flash_attention_2, g.compute_capability) == (bf16, bf16, cc)


@pytest.mark.parametrize(
    ("total_mib", "profile"), [(10240, "rtx3080-10gb"), (12288, "rtx3080-12gb")]
)
def test_same_nvml_name_is_told_apart_by_memory(monkeypatch: pytest.MonkeyPatch, total_mib: int,
                                                profile: str) -> None:  # fmt: skip
    use(monkeypatch, FakeNVML([FakeGPU("NVIDIA GeForce RTX 3080", total_mib, cc=(8, 6))]))
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
    use(monkeypatch, FakeNVML(gpus))
    hw = hardware.resolve("auto")
    assert hw.num_gpus == 8 and hw.warnings == ()
    assert {g.profile for g in hw.gpus} == {"h100-sxm"}


def test_auto_falls_back_to_memory_v1_on_old_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    use(
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
    fake = use(monkeypatch, FakeNVML([], init_error=code))
    with pytest.raises(HardwareError) as info:
        hardware.resolve("auto")
    assert info.value.message == f"no NVIDIA GPU found (NVML: {text})"
    assert info.value.exit_code == EXIT_FAILURE
    assert (
        info.value.hint and "--gpu rtx4090" in info.value.hint and "--gpu 24GB" in info.value.hint
    )
    assert fake.shutdown_calls == 0  # never initialised, so nothing to shut down


def test_auto_with_allow_cpu_plans_for_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeNVML([], init_error=NVML_ERROR_DRIVER_NOT_LOADED))
    hw = hardware.resolve("auto", allow_cpu=True)
    assert hw.is_cpu and hw.source == "cpu"
    assert len(hw.warnings) == 1 and "no NVIDIA GPU found" in hw.warnings[0]


def test_zero_devices_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = use(monkeypatch, FakeNVML([]))
    with pytest.raises(HardwareError, match="0 devices"):
        hardware.detect()
    assert fake.shutdown_calls == 1


@pytest.mark.parametrize(
    "fn", ["nvmlDeviceGetName", "nvmlDeviceGetMemoryInfo", "nvmlSystemGetDriverVersion"]
)
def test_failure_while_reading_still_shuts_nvml_down(
    monkeypatch: pytest.MonkeyPatch, fn: str
) -> None:
    fake = use(monkeypatch, two_gpus(fail_on=fn))
    with pytest.raises(HardwareError, match="reading the GPUs through NVML failed"):
        hardware.detect()
    assert fake.shutdown_calls == 1


def test_optional_readings_may_be_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, two_gpus(fail_on="nvmlDeviceGetUUID"))
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


# --------------------------------------------------------------------------- `axo-helper gpus`
def test_gpus_table(nvml: FakeNVML) -> None:
    result = CliRunner().invoke(cli, ["gpus"])
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


def test_gpus_json_shape(nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    result = CliRunner().invoke(cli, ["gpus", "--json"])
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


def test_gpus_warnings_go_to_stderr(nvml: FakeNVML, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,7")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    result = CliRunner().invoke(cli, ["gpus", "--json"])
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 1
    assert "warning: CUDA_VISIBLE_DEVICES entry '7'" in result.stderr


@pytest.mark.parametrize("args", [["gpus"], ["gpus", "--json"]])
def test_gpus_without_driver_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    use(monkeypatch, FakeNVML([], init_error=NVML_ERROR_LIBRARY_NOT_FOUND))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: no NVIDIA GPU found (NVML: NVML Shared Library Not Found)"
    assert lines[1].startswith("  hint: ")
    assert "Traceback" not in result.output


def test_gpus_profiles_lists_every_profile() -> None:
    runner = CliRunner()
    as_json = runner.invoke(cli, ["gpus", "--profiles", "--json"])
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert [r["key"] for r in rows] == [r["key"] for r in hardware.list_profiles()]
    table = runner.invoke(cli, ["gpus", "--profiles"])
    assert table.exit_code == 0
    assert all(key in table.stdout for key in ("rtx4090", "h100-sxm", "mi300x"))
