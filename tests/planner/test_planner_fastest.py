"""The fastest plan that fits, across the toolbox: fused cross-entropy, checkpointing or
not, 8-bit states, DDP or ZeRO-3, CPU offload. The real memory and time models."""

from __future__ import annotations

import pytest
from planner_helpers import POLICY, gpu, mdl, qa_data

from axo_helper import planner
from axo_helper.errors import PlanError
from axo_helper.specs import Plan

LIGER = frozenset({POLICY.fused_ce.package})


def _plan(spec: str, name: str, **kw: object) -> Plan:
    return planner.plan(gpu(spec), mdl(name), kw.pop("data", None), POLICY, installed=LIGER, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "name", "seq"),
    [
        ("rtx4090", "Qwen/Qwen2.5-7B-Instruct", 4096),  # was QLoRA
        ("rtx4090", "meta-llama/Llama-3.1-8B", 4096),  # was QLoRA
        ("rtx3060", "meta-llama/Llama-3.2-3B-Instruct", 4096),  # was QLoRA
        ("a100-80gb", "meta-llama/Llama-3.1-8B", 32768),  # 32k-token documents: was QLoRA
    ],
)
def test_lora_with_fused_cross_entropy_instead_of_qlora(spec: str, name: str, seq: int) -> None:
    p = _plan(spec, name, seq_len=seq)
    assert p.method == "lora" and p.setup.fused_cross_entropy
    assert p.memory.total_gib <= p.budget_gib
    assert p.reasons["fused_cross_entropy"].startswith("fused (Liger)")
    # without the integration 16-bit LoRA fits only with its activations in host memory
    # (the 32k documents), or not at all: the same request plans QLoRA
    plain = planner.plan(gpu(spec), mdl(name), None, POLICY, seq_len=seq)
    assert not plain.setup.fused_cross_entropy
    if plain.method == "lora":
        assert seq == 32768 and plain.setup.activation_offloading
        assert plain.seconds_per_epoch is None and plain.tokens_per_second is not None
        assert p.tokens_per_second is not None and p.tokens_per_second >= plain.tokens_per_second
        return
    assert plain.method == "qlora"
    # ... and says what installing it would allow, with the command
    note = next(w for w in plain.warnings if "pip install liger-kernel" in w)
    assert "lora at micro batch" in note and "instead of qlora" in note


def test_ddp_not_zero3_on_two_pcie_cards() -> None:
    # A replica fits on each 4090 (with fused cross-entropy): DDP, not ZeRO-3 over PCIe.
    for name in ("meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B"):
        p = _plan("2xrtx4090", name, seq_len=4096)
        assert p.setup.distributed == "ddp", p.reasons["distributed"]
        assert p.method == "lora"
    p = _plan("2xrtx4090", "Qwen/Qwen2.5-7B", data=qa_data())
    assert p.setup.distributed == "ddp"
    zero3 = [r for r in p.rejected if "zero3" in r.method and "slower" in r.reason]
    assert zero3, [r.reason for r in p.rejected]


def test_checkpointing_off_where_the_estimate_says_it_is_faster() -> None:
    p = _plan("rtx4090", "meta-llama/Llama-3.2-3B", method="lora", data=qa_data())
    assert p.seconds_per_epoch is not None
    # every alternative that fits is slower, or as fast and less simple
    for r in p.rejected:
        assert "slower" in r.reason or "needs" in r.reason or "as fast" in r.reason, r
    if not p.setup.gradient_checkpointing:
        assert p.reasons["gradient_checkpointing"].startswith("off")


def test_70b_qlora_on_two_24gb_cards_offloads() -> None:
    """Axolotl's examples/llama-3/qlora-fsdp-70b.yaml: 70B QLoRA on two 24 GB cards."""
    p = _plan("2xrtx4090", "meta-llama/Llama-3.1-70B", method="qlora", seq_len=2048)
    assert p.setup.cpu_offload and p.setup.distributed in ("zero3", "fsdp")
    assert p.memory.total_gib <= p.budget_gib
    assert p.memory.host_gib > 0


def test_70b_full_on_8xh100_offloads() -> None:
    p = _plan("8xh100-sxm", "meta-llama/Llama-3.1-70B", method="full", seq_len=2048)
    assert p.setup.cpu_offload and p.setup.distributed == "zero3"
    assert p.memory.total_gib <= p.budget_gib


def test_offload_needs_the_host_memory() -> None:
    # 70B full offloads ~1 TiB of states: a node with 256 GiB of RAM cannot take it.
    with pytest.raises(PlanError, match="nothing fits"):
        planner.plan(
            gpu("8xh100-sxm"),
            mdl("meta-llama/Llama-3.1-70B"),
            None,
            POLICY,
            method="full",
            seq_len=2048,
            installed=LIGER,
            host_memory_gib=256.0,
        )


def test_llama_3b_full_on_an_a100_80gb() -> None:
    p = _plan("a100-80gb", "meta-llama/Llama-3.2-3B", seq_len=2048)
    assert p.method == "full" and p.memory.total_gib <= p.budget_gib


def test_the_time_model_sees_the_interconnect() -> None:
    """ZeRO-3 gathers every weight each micro step: over NVLink it costs less time than
    over PCIe, so the same job is faster on the NVLink part."""
    pcie = _plan("2xh100-pcie", "Qwen/Qwen2.5-14B", method="lora", distributed="zero3", data=qa_data())
    nvl = _plan("2xh100-nvl", "Qwen/Qwen2.5-14B", method="lora", distributed="zero3", data=qa_data())
    assert pcie.seconds_per_step and nvl.seconds_per_step
    # normalised by compute (the two parts differ in TFLOP/s too)
    assert pcie.assumed_mfu is not None and nvl.assumed_mfu is not None
    assert nvl.assumed_mfu > pcie.assumed_mfu


def test_operator_case_shows_8bit_lora_and_qlora_with_their_time() -> None:
    """Llama-3.1-8B, 10,000 Q&A pairs, RTX 4090: 16-bit LoRA fits (fused cross-entropy);
    8-bit LoRA and QLoRA are the alternatives, each with its memory and predicted time."""
    p = _plan("rtx4090", "meta-llama/Llama-3.1-8B", data=qa_data())
    assert p.method == "lora" and not p.setup.load_in_8bit
    by_method = {r.method: r for r in p.rejected}
    eight, four = by_method["lora (8-bit base, load_in_8bit)"], by_method["qlora"]
    assert eight.total_gib < p.memory.total_gib and four.total_gib < eight.total_gib
    for alt in (eight, four):
        assert "min per epoch" in alt.reason and "slower" in alt.reason


def test_activation_offloading_only_where_it_pays() -> None:
    # 2k tokens on an H100: everything fits on the GPU; offloading would only add time
    p = _plan("h100-sxm", "meta-llama/Llama-3.1-8B", seq_len=2048)
    assert not p.setup.activation_offloading and "activation_offloading" not in p.reasons
    ao = [r for r in p.rejected if "activation offloading" in r.method]
    assert ao and all(r.reason.startswith(("slower", "as fast")) for r in ao)
    # 32k tokens on an A100 without Liger: 16-bit LoRA fits only with the blocks'
    # inputs in host memory, and is faster than QLoRA, which fits without
    p = planner.plan(gpu("a100-80gb"), mdl("meta-llama/Llama-3.1-8B"), None, POLICY, seq_len=32768)
    assert p.method == "lora" and p.setup.activation_offloading and p.setup.gradient_checkpointing
    assert p.reasons["activation_offloading"].startswith("on, ")
    assert "without it micro batch 1 needs" in p.reasons["activation_offloading"]
    assert p.memory.host_gib > 0
    qlora = next(r for r in p.rejected if r.method == "qlora")
    assert qlora.total_gib <= p.budget_gib and "slower" in qlora.reason


def test_activation_offloading_never_on_cpu_or_with_fsdp() -> None:
    from axo_helper import hardware

    cpu = planner.plan(hardware.resolve("cpu"), mdl("HuggingFaceTB/SmolLM2-135M"), None, POLICY)
    assert not cpu.setup.activation_offloading
    assert not any("activation offloading" in r.method for r in cpu.rejected)
    p = _plan("2xrtx4090", "meta-llama/Llama-3.1-8B", seq_len=8192, distributed="fsdp")
    assert p.setup.distributed == "fsdp" and not p.setup.activation_offloading
    assert not any("activation offloading" in r.method for r in p.rejected)
