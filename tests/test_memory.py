"""memory.estimate: components, sharding, flags and monotonicity.

Expected values are derived in the tests from the architecture (or are published
counts, named where used), never copied from the estimator's output.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axo_helper import memory
from axo_helper.specs import GIB, LinearShape, ModelSpec, TrainSetup

# --------------------------------------------------------------------------- models
H, FFN, L, V = 4096, 14336, 32, 128256  # Llama-3-8B config.json
LLAMA3_LINEARS = (
    LinearShape("q_proj", H, H),
    LinearShape("k_proj", H, 1024),
    LinearShape("v_proj", H, 1024),
    LinearShape("o_proj", H, H),
    LinearShape("gate_proj", H, FFN),
    LinearShape("up_proj", H, FFN),
    LinearShape("down_proj", FFN, H),
)
_BLOCK = sum(ls.d_in * ls.d_out for ls in LLAMA3_LINEARS) + 2 * H  # + two RMSNorms
LLAMA3_PARAMS = 2 * V * H + L * _BLOCK + H  # untied embeddings + blocks + final norm


def llama3_8b(**overrides: object) -> ModelSpec:
    spec = ModelSpec(
        name="meta-llama/Meta-Llama-3-8B",
        model_type="llama",
        architecture="LlamaForCausalLM",
        family="llama",
        hidden_size=H,
        intermediate_size=FFN,
        num_layers=L,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        vocab_size=V,
        tie_word_embeddings=False,
        max_position_embeddings=8192,
        total_params=LLAMA3_PARAMS,
        active_params=LLAMA3_PARAMS,
        linears=LLAMA3_LINEARS,
    )
    return dataclasses.replace(spec, **overrides)  # type: ignore[arg-type]


def tiny_moe() -> ModelSpec:
    """A Mixtral-shaped toy: 4 experts, 2 per token, fused expert tensors (transformers 5)."""
    h, w, e = 256, 512, 4
    linears = (
        LinearShape("q_proj", h, h),
        LinearShape("k_proj", h, 64),
        LinearShape("v_proj", h, 64),
        LinearShape("o_proj", h, h),
        LinearShape("gate", h, e, nn_linear=False),
        LinearShape("experts.gate_up_proj", h, 2 * w, count=e, nn_linear=False),
        LinearShape("experts.down_proj", w, h, count=e, nn_linear=False),
    )
    block = sum(ls.d_in * ls.d_out * ls.count for ls in linears) + 2 * h
    total = 2 * 1000 * h + 4 * block + h
    return ModelSpec(
        name="toy-moe",
        model_type="mixtral",
        architecture="MixtralForCausalLM",
        family="mixtral",
        hidden_size=h,
        intermediate_size=w,
        num_layers=4,
        num_attention_heads=4,
        num_kv_heads=1,
        head_dim=64,
        vocab_size=1000,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
        total_params=total,
        active_params=total - 4 * (e - 2) * 3 * h * w,
        linears=linears,
        num_experts=e,
        experts_per_token=2,
    )


MODEL = llama3_8b()


def setup(**kw: object) -> TrainSetup:
    base: dict[str, object] = {"model": MODEL, "attn_implementation": "flash_attention_2"}
    base.update(kw)
    return TrainSetup(**base)  # type: ignore[arg-type]


def total(**kw: object) -> float:
    return memory.estimate(setup(**kw)).total_gib


# --------------------------------------------------------------------------- the fixture
def test_llama3_fixture_matches_published_parameter_count() -> None:
    # Meta's model card / transformers num_parameters(): 8,030,261,248.
    assert LLAMA3_PARAMS == 8_030_261_248


# --------------------------------------------------------------------------- LoRA params
def test_lora_params_llama3_8b_r16_all_linear() -> None:
    # PEFT print_trainable_parameters() for Llama-3-8B, r=16, all-linear.
    assert memory.lora_params(MODEL, ("all-linear",), 16) == 41_943_040


@pytest.mark.parametrize(
    ("targets", "names"),
    [
        (("q_proj", "v_proj"), ("q_proj", "v_proj")),
        (("q_proj", "k_proj", "v_proj", "o_proj"), ("q_proj", "k_proj", "v_proj", "o_proj")),
        (("self_attn.q_proj",), ("q_proj",)),  # dotted suffixes match like PEFT
        (("gate_proj", "up_proj", "down_proj"), ("gate_proj", "up_proj", "down_proj")),
        (("nonexistent",), ()),
    ],
)
def test_lora_params_by_name(targets: tuple[str, ...], names: tuple[str, ...]) -> None:
    r = 8
    shapes = {ls.name: ls for ls in LLAMA3_LINEARS}
    expected = L * r * sum(shapes[n].d_in + shapes[n].d_out for n in names)
    assert memory.lora_params(MODEL, targets, r) == expected


def test_lora_params_scale_with_rank() -> None:
    assert memory.lora_params(MODEL, ("all-linear",), 64) == 4 * memory.lora_params(
        MODEL, ("all-linear",), 16
    )


def test_moe_all_linear_skips_fused_experts_but_named_targets_count_them() -> None:
    moe = tiny_moe()
    r = 4
    attn = sum(ls.d_in + ls.d_out for ls in moe.linears[:4])
    assert memory.lora_params(moe, ("all-linear",), r) == moe.num_layers * r * attn
    gate_up = moe.linears[5]
    assert memory.lora_params(moe, ("experts.gate_up_proj",), r) == (
        moe.num_layers * r * (gate_up.d_in + gate_up.d_out) * gate_up.count
    )


def test_modules_to_save_add_full_embedding_copies() -> None:
    s = setup(lora_modules_to_save=("embed_tokens", "lm_head"))
    expected = memory.lora_params(MODEL, s.lora_targets, s.lora_r) + 2 * V * H
    assert memory.trainable_params(s) == expected
    assert memory.trainable_params(setup(method="full")) == LLAMA3_PARAMS


def test_unknown_modules_to_save_is_noted_not_counted() -> None:
    est = memory.estimate(setup(lora_modules_to_save=("mystery_head",)))
    assert est.trainable_params == memory.lora_params(MODEL, ("all-linear",), 16)
    assert any("mystery_head" in n for n in est.notes)


# --------------------------------------------------------------------------- weights
def test_nf4_weights_of_8b_are_about_5_gib_with_16bit_embeddings() -> None:
    est = memory.estimate(setup(method="qlora", lora_r=16))
    quantized = L * sum(ls.d_in * ls.d_out for ls in LLAMA3_LINEARS)
    lower = (quantized * 0.5 + (LLAMA3_PARAMS - quantized) * 2) / GIB  # bare 4 bits
    assert 5.0 < est.weights_gib < 6.0
    assert est.weights_gib > lower
    # Embeddings stay 16-bit: the same model with tied embeddings is lighter by V*h*2 bytes.
    tied = memory.estimate(
        setup(
            model=llama3_8b(tie_word_embeddings=True, total_params=LLAMA3_PARAMS - V * H),
            method="qlora",
        )
    )
    assert est.weights_gib - tied.weights_gib == pytest.approx(V * H * 2 / GIB, rel=1e-6)


@pytest.mark.parametrize(
    ("kw", "bytes_per_param"),
    [
        ({"method": "lora", "precision": "bf16"}, 2.0),
        ({"method": "lora", "precision": "fp32"}, 4.0),
        ({"method": "lora", "load_in_8bit": True}, None),  # checked against bf16 below
    ],
)
def test_base_weights_by_precision(kw: dict[str, object], bytes_per_param: float | None) -> None:
    w = memory.weights(setup(**kw)).gpu
    adapters = memory.lora_params(MODEL, ("all-linear",), 16) * 4  # fp32 adapters
    base = w - adapters
    if bytes_per_param is not None:
        assert base == pytest.approx(LLAMA3_PARAMS * bytes_per_param)
    else:
        bf16 = memory.weights(setup(method="lora")).gpu - adapters
        # int8 linears: roughly half the 16-bit base, embeddings still 16-bit
        assert 0.5 * bf16 < base < 0.65 * bf16


def test_kbit_load_peak_is_the_fp32_upcast() -> None:
    w = memory.weights(setup(method="qlora"))
    rest = LLAMA3_PARAMS - MODEL.linear_params
    assert w.load_peak - w.gpu == pytest.approx(rest * (4 - 2))


# --------------------------------------------------------------------------- trainable state
def test_full_finetune_8b_adamw() -> None:
    # Mixed precision with an fp32 master (ZeRO paper: 16 B/param) exceeds 100 GiB: DeepSpeed
    # on one GPU, or fp32 training (4 + 4 + 8 B/param).
    assert total(method="full", distributed="zero3", num_gpus=1) > 100
    assert total(method="full", precision="fp32") > 100
    # Axolotl's bf16 path trains bf16 weights with bf16 AdamW moments: 2 + 2 + 4 B/param,
    # still more than an 80 GB card once activations are added at long sequences.
    est = memory.estimate(setup(method="full"))
    assert est.weights_gib + est.trainable_state_gib >= 8 * LLAMA3_PARAMS / GIB
    assert est.weights_gib + est.trainable_state_gib < 16 * LLAMA3_PARAMS / GIB


def test_lora_adapters_cost_16_bytes_per_param_with_adamw() -> None:
    n = memory.lora_params(MODEL, ("all-linear",), 64)
    st = memory.trainable_state(setup(lora_r=64, optimizer="adamw_torch_fused"))
    assert st.gpu == pytest.approx(n * (4 + 8))  # fp32 grad + two fp32 moments
    w = memory.weights(setup(lora_r=64)).gpu - LLAMA3_PARAMS * 2
    assert w == pytest.approx(n * 4)  # the fp32 adapter itself


@pytest.mark.parametrize(
    ("small", "large"),
    [
        ("adamw_bnb_8bit", "adamw_torch_fused"),
        ("paged_adamw_8bit", "paged_adamw_32bit"),
        ("adamw_torch_4bit", "adamw_torch_8bit"),
        ("lion_8bit", "lion_32bit"),
        ("lion_32bit", "ademamix"),
        ("adafactor", "adamw_torch_fused"),
        ("sgd", "lion_32bit"),
    ],
)
def test_smaller_optimizer_states(small: str, large: str) -> None:
    a = memory.trainable_state(setup(method="full", optimizer=small))
    b = memory.trainable_state(setup(method="full", optimizer=large))
    assert a.gpu < b.gpu


def test_paged_state_is_counted_but_not_allocated() -> None:
    paged = memory.estimate(setup(method="qlora", optimizer="paged_adamw_32bit"))
    plain = memory.estimate(setup(method="qlora", optimizer="adamw_torch_fused"))
    assert paged.trainable_state_gib == pytest.approx(plain.trainable_state_gib)
    assert paged.allocated_gib < plain.allocated_gib
    assert any("paged" in n for n in paged.notes)


def test_unknown_optimizer_is_planned_as_adamw_and_noted() -> None:
    odd = memory.estimate(setup(optimizer="shiny_new_opt"))
    adamw = memory.estimate(setup(optimizer="adamw_torch"))
    assert odd.total_gib == pytest.approx(adamw.total_gib)
    assert any("shiny_new_opt" in n for n in odd.notes)


def test_foreach_adamw_step_temporaries_exceed_fused() -> None:
    foreach = memory.trainable_state(setup(method="full", optimizer="adamw_torch"))
    fused = memory.trainable_state(setup(method="full", optimizer="adamw_torch_fused"))
    assert fused.step_temp == 0
    assert foreach.step_temp > 0


# --------------------------------------------------------------------------- sharding
def test_zero3_over_8_gpus_divides_states_and_weights() -> None:
    one = memory.estimate(setup(method="full", distributed="zero3", num_gpus=1))
    eight = memory.estimate(setup(method="full", distributed="zero3", num_gpus=8))
    assert eight.trainable_state_gib == pytest.approx(one.trainable_state_gib / 8, rel=0.05)
    assert eight.weights_gib == pytest.approx(one.weights_gib / 8, rel=1e-6)
    # activations and logits are never sharded
    assert eight.logits_gib == pytest.approx(one.logits_gib)
    assert eight.activations_gib == pytest.approx(one.activations_gib)


def test_zero_stages_shard_progressively() -> None:
    kw: dict[str, object] = {"method": "full", "num_gpus": 8}
    state = {
        d: memory.trainable_state(setup(distributed=d, **kw)).gpu
        for d in ("ddp", "zero1", "zero2", "zero3")
    }
    assert state["ddp"] > state["zero1"] > state["zero2"] >= state["zero3"]
    w = {d: memory.weights(setup(distributed=d, **kw)).gpu for d in ("zero2", "zero3")}
    assert w["zero3"] < w["zero2"]


def test_ddp_replicates_and_adds_gradient_buckets() -> None:
    single = memory.estimate(setup(method="full"))
    ddp = memory.estimate(setup(method="full", distributed="ddp", num_gpus=4))
    assert ddp.weights_gib == pytest.approx(single.weights_gib)
    grads = LLAMA3_PARAMS * 2 / GIB
    assert ddp.overhead_gib - single.overhead_gib >= grads


def test_fsdp_gradient_accumulation_keeps_gradients_unsharded() -> None:
    kw: dict[str, object] = {"method": "full", "distributed": "fsdp", "num_gpus": 8}
    ga1 = memory.trainable_state(setup(gradient_accumulation_steps=1, **kw))
    ga4 = memory.trainable_state(setup(gradient_accumulation_steps=4, **kw))
    assert ga4.gpu - ga1.gpu == pytest.approx(LLAMA3_PARAMS * 2 * (1 - 1 / 8))


def test_lora_base_is_sharded_only_by_zero3_or_fsdp() -> None:
    base = memory.weights(setup()).gpu
    assert memory.weights(setup(distributed="zero2", num_gpus=4)).gpu < base  # adapters only
    assert memory.weights(setup(distributed="zero2", num_gpus=4)).gpu > base * 0.9
    assert memory.weights(setup(distributed="zero3", num_gpus=4)).gpu < base / 3


def test_qlora_fsdp_shards_only_with_bf16_quant_storage() -> None:
    kw: dict[str, object] = {"method": "qlora", "distributed": "fsdp", "num_gpus": 4}
    without = memory.estimate(setup(**kw))
    with_storage = memory.estimate(setup(quant_storage_bf16=True, **kw))
    assert with_storage.weights_gib < without.weights_gib / 3
    assert any("quant_storage" in n for n in without.notes)


def test_cpu_offload_moves_optimizer_state_to_host() -> None:
    kw: dict[str, object] = {"method": "full", "distributed": "zero2", "num_gpus": 2}
    on_gpu = memory.estimate(setup(**kw))
    offloaded = memory.estimate(setup(cpu_offload=True, **kw))
    assert offloaded.trainable_state_gib < on_gpu.trainable_state_gib / 4
    assert offloaded.host_gib > 0 == on_gpu.host_gib


# --------------------------------------------------------------------------- activations
@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
@pytest.mark.parametrize("attn", ["flash_attention_2", "sdpa", "eager"])
def test_gradient_checkpointing_lowers_activations(method: str, attn: str) -> None:
    on = memory.estimate(setup(method=method, attn_implementation=attn, sequence_len=4096))
    off = memory.estimate(
        setup(
            method=method,
            attn_implementation=attn,
            sequence_len=4096,
            gradient_checkpointing=False,
        )
    )
    assert on.activations_gib + on.logits_gib < off.activations_gib + off.logits_gib
    # checkpointing keeps about one hidden state per layer per token
    kept = L * H * 2 * 4096 / GIB
    assert on.activations_gib + on.logits_gib >= kept


def _act(attn: str, seq: int) -> float:
    est = memory.estimate(
        setup(attn_implementation=attn, sequence_len=seq, gradient_checkpointing=False)
    )
    return est.activations_gib + est.logits_gib


def test_flash_attention_is_linear_in_sequence_length_eager_is_not() -> None:
    assert _act("flash_attention_2", 4096) == pytest.approx(2 * _act("flash_attention_2", 2048))
    # eager's extra over flash is the s^2 term: doubling s quadruples it
    extra_2k = _act("eager", 2048) - _act("flash_attention_2", 2048)
    extra_4k = _act("eager", 4096) - _act("flash_attention_2", 4096)
    assert extra_4k / extra_2k > 3.5


def test_gqa_saves_less_than_multi_head_attention() -> None:
    mha = llama3_8b(num_kv_heads=32)
    gqa_act = _act("flash_attention_2", 2048)
    est = memory.estimate(setup(model=mha, sequence_len=2048, gradient_checkpointing=False))
    assert est.activations_gib + est.logits_gib > gqa_act


def test_lora_dropout_keeps_a_copy_of_adapted_inputs() -> None:
    no_gc = {"gradient_checkpointing": False}
    with_dropout = memory.activations(setup(lora_dropout=0.05, **no_gc)).saved
    without = memory.activations(setup(lora_dropout=0.0, **no_gc)).saved
    assert with_dropout > without


def test_moe_activations_scale_with_experts_per_token() -> None:
    moe = tiny_moe()
    top2 = memory.activations(setup(model=moe, gradient_checkpointing=False)).saved
    top1 = memory.activations(
        setup(model=dataclasses.replace(moe, experts_per_token=1), gradient_checkpointing=False)
    ).saved
    assert top2 > top1


# --------------------------------------------------------------------------- logits
def test_logits_are_twelve_bytes_per_vocab_entry_per_token() -> None:
    s = setup(sequence_len=2048, micro_batch_size=2)
    assert memory.logits_bytes(s) == 2 * 2048 * V * 12


def test_fused_cross_entropy_lowers_logits() -> None:
    plain = memory.estimate(setup(sequence_len=4096))
    fused = memory.estimate(setup(sequence_len=4096, fused_cross_entropy=True))
    assert fused.logits_gib < plain.logits_gib / 10
    assert fused.total_gib < plain.total_gib


# --------------------------------------------------------------------------- the whole
@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
@pytest.mark.parametrize("distributed", ["none", "ddp", "zero2", "zero3", "fsdp"])
def test_breakdown_sums_to_total(method: str, distributed: str) -> None:
    n = 1 if distributed == "none" else 4
    est = memory.estimate(setup(method=method, distributed=distributed, num_gpus=n))
    parts = (
        est.weights_gib
        + est.trainable_state_gib
        + est.activations_gib
        + est.logits_gib
        + est.overhead_gib
    )
    assert parts == pytest.approx(est.total_gib)
    assert 0 < est.allocated_gib < est.total_gib
    assert est.total_gib - est.allocated_gib >= memory.CUDA_CONTEXT_GIB


def test_methods_order_full_lora_qlora() -> None:
    assert total(method="full") > total(method="lora") > total(method="qlora")


setups = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["full", "lora", "qlora"]),
        "gradient_checkpointing": st.booleans(),
        "attn_implementation": st.sampled_from(["flash_attention_2", "sdpa", "eager"]),
        "optimizer": st.sampled_from(["adamw_torch", "adamw_torch_fused", "adamw_bnb_8bit"]),
        "distributed": st.sampled_from(["none", "ddp", "zero2", "zero3", "fsdp"]),
        "fused_cross_entropy": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(kw=setups, seq=st.integers(64, 16384), extra=st.integers(1, 4096), mb=st.integers(1, 16))
def test_monotonic_in_sequence_length(kw: dict[str, object], seq: int, extra: int, mb: int) -> None:
    n = 1 if kw["distributed"] == "none" else 4
    a = total(sequence_len=seq, micro_batch_size=mb, num_gpus=n, **kw)
    b = total(sequence_len=seq + extra, micro_batch_size=mb, num_gpus=n, **kw)
    assert b >= a


@settings(max_examples=60, deadline=None)
@given(kw=setups, seq=st.integers(64, 8192), mb=st.integers(1, 32), more=st.integers(1, 8))
def test_monotonic_in_micro_batch(kw: dict[str, object], seq: int, mb: int, more: int) -> None:
    n = 1 if kw["distributed"] == "none" else 4
    a = total(sequence_len=seq, micro_batch_size=mb, num_gpus=n, **kw)
    b = total(sequence_len=seq, micro_batch_size=mb + more, num_gpus=n, **kw)
    assert b >= a


def test_memory_module_does_not_import_torch() -> None:
    code = (
        "import sys, axo_helper.memory as m; "
        "bad = [x for x in ('torch', 'transformers', 'axolotl') if x in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- dev set
DEV_CSV = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "vram-dev.csv"


def test_dev_set_median_error_within_target() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import estimator_error as bench
    finally:
        sys.path.pop(0)
    cases = bench.load_cases(bench.DEFAULT_CSV, bench.DEFAULT_MODELS)
    with DEV_CSV.open(newline="") as f:
        assert len(cases) == sum(1 for _ in csv.DictReader(f))
    errors = [abs(bench.predict(c) - c.measured_gib) / c.measured_gib for c in cases]
    assert statistics.median(errors) < 0.15


def test_moe_qlora_experts_stay_fp32_unless_quantized() -> None:
    moe = tiny_moe()
    experts = moe.num_layers * sum(
        ls.d_in * ls.d_out * ls.count for ls in moe.linears if "experts" in ls.name
    )
    plain = memory.weights(setup(model=moe, method="qlora", lora_targets=("q_proj",)))
    quant = memory.weights(
        setup(model=moe, method="qlora", lora_targets=("q_proj",), quantize_moe_experts=True)
    )
    # fp32 experts (4 B) versus NF4 (~0.52 B)
    assert plain.gpu - quant.gpu == pytest.approx(
        experts * (4 - memory.NF4_DQ_BYTES_PER_PARAM), rel=0.01
    )
    assert any("quantize_moe_experts" in n for n in plain.notes)


def test_reserved_sits_between_allocated_and_total() -> None:
    for kw in ({}, {"method": "full", "distributed": "zero3", "num_gpus": 8}):
        s = setup(**kw)
        est = memory.estimate(s)
        assert est.allocated_gib < memory.reserved_gib(est, s) < est.total_gib
