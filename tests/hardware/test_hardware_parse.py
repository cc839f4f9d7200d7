"""`--gpu SPEC`: counts, profile names, sizes, and the errors for malformed specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axo_helper import hardware
from axo_helper.errors import EXIT_USAGE, GPUSpecError


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
