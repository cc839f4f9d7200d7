"""Shared inputs of the planner tests: hardware, models, data, and a toy estimator."""

from __future__ import annotations

from axo_helper import hardware, model, planner
from axo_helper.specs import (
    GPU,
    DataSpec,
    Hardware,
    MemoryBreakdown,
    ModelSpec,
    Plan,
    TokenStats,
    TrainSetup,
)

POLICY = planner.load_policy()


def gpu(spec: str) -> Hardware:
    return hardware.resolve(spec)


def mdl(name: str) -> ModelSpec:
    return model.inspect(name)


def sized(memory_gib: float, n: int = 1) -> Hardware:
    """n identical Ampere-class GPUs of this memory."""
    g = GPU(
        name=f"test {memory_gib:g} GiB",
        memory_gib=memory_gib,
        compute_capability=(8, 0),
        tflops_bf16=300.0,
    )
    return Hardware(gpus=(g,) * n, source="size")


def qa_data(
    rows: int = 10_000,
    p50: int = 180,
    p95: int = 420,
    p99: int = 600,
    mx: int = 900,
    mean: float = 210.0,
) -> DataSpec:
    return DataSpec(
        path="qa.jsonl",
        files=("qa.jsonl",),
        type="alpaca",
        fields={},
        rows=rows,
        sampled_rows=rows,
        tokens=TokenStats(p50=p50, p95=p95, p99=p99, max=mx, mean=mean, total=int(rows * mean)),
        tokenizer=None,
        approximate=True,
    )


def fits(p: Plan) -> bool:
    return p.memory.total_gib <= p.budget_gib


def toy_estimate(s: TrainSetup) -> MemoryBreakdown:
    """Memory in round GiB: 10 for weights (5 when sharded over 2+), optimizer 8 (2 when
    8-bit), 4 GiB per micro-batch sample without checkpointing, 1 with."""
    shard = s.num_gpus if s.distributed in ("zero3", "fsdp") else 1
    weights = 10.0 / shard
    state = (2.0 if "8bit" in s.optimizer else 8.0) / shard
    act = (1.0 if s.gradient_checkpointing else 4.0) * s.micro_batch_size
    total = weights + state + act
    return MemoryBreakdown(weights, state, act, 0.0, 0.0, total, 1_000_000)


def budget_hw(budget: float, n: int = 1) -> Hardware:
    """Hardware whose policy budget is `budget` GiB (plus a hair for float rounding)."""
    return sized(POLICY.raw_memory_for(budget + 1e-9), n)
