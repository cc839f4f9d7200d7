"""Plans built by hand for the render/validate tests (no planner, no memory model).

The real planner is exercised by tests/config/test_config_grid.py; these pin the
template's behaviour for exact setups (a given GPU, method, strategy, dataset). Like the
planner's, each plan carries `settings` from planner.settings.decide_settings, so render
has one path: it lays out Plan.settings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from axo_helper import hardware, model
from axo_helper.chat import decide
from axo_helper.planner.settings import decide_settings
from axo_helper.specs import (
    ChatChoice,
    ConfigSettings,
    DataSpec,
    Hardware,
    MemoryBreakdown,
    ModelSpec,
    Plan,
    TokenStats,
    TrainSetup,
)

CHAT_FIELDS: dict[str, Any] = {
    "field_messages": "conversations",
    "message_property_mappings": {"role": "from", "content": "value"},
}


def data_spec(
    kind: str = "chat_template",
    *,
    fields: dict[str, Any] | None = None,
    rows: int = 5000,
    path: str = "data/qa.jsonl",
    file_format: str = "jsonl",
) -> DataSpec:
    if fields is None:
        fields = {"chat_template": CHAT_FIELDS, "completion": {"field": "text"}}.get(kind, {})
    return DataSpec(
        path=path,
        files=(path,),
        type=kind,  # type: ignore[arg-type]
        fields=dict(fields),
        rows=rows,
        sampled_rows=min(rows, 1000),
        tokens=TokenStats(p50=180, p95=600, p99=900, max=1500, mean=220.0, total=rows * 220),
        tokenizer=None,
        approximate=True,
        file_format=file_format,  # type: ignore[arg-type]
    )


def settings_for(
    hw: Hardware, setup: TrainSetup, data: DataSpec | None, reasons: dict[str, str]
) -> ConfigSettings:
    """decide_settings as planner.plan calls it; the checkpointing reason is a stand-in
    for the planner's (a hand plan has no search to explain)."""
    gc_reason = reasons.get("gradient_checkpointing") or (
        "needed to fit: recomputes activations (~30% slower)"
        if setup.gradient_checkpointing
        else "fits without it, so training runs faster"
    )
    return decide_settings(hw, setup, data, gc_reason)


def hand_plan(
    gpu: str = "rtx4090",
    model_name: str = "meta-llama/Llama-3.2-1B",
    method: str = "lora",
    kind: str = "chat_template",
    *,
    data: DataSpec | None = None,
    spec: Any = None,
    reasons: dict[str, str] | None = None,
    **setup: Any,
) -> Plan:
    hw = hardware.resolve(gpu)
    m = spec if spec is not None else model.inspect(model_name)
    g = hw.gpu
    defaults: dict[str, Any] = {
        "model": m,
        "method": method,
        "precision": "fp32" if g is None else ("bf16" if g.bf16 else "fp16"),
        "attn_implementation": "sdpa"
        if g is None or not g.flash_attention_2
        else "flash_attention_2",
        "sequence_len": 1024,
        "micro_batch_size": 2,
        "sample_packing": True,
        "gradient_checkpointing": True,
        "num_gpus": hw.world_size if g is not None else 1,
        "distributed": "ddp" if hw.world_size > 1 and g is not None else "none",
    }
    defaults.update(setup)
    ts = TrainSetup(**defaults)
    mem = MemoryBreakdown(2.0, 1.0, 3.0, 0.5, 1.0, 7.5, 12_000_000)
    ds = data if data is not None else data_spec(kind)
    why = dict(reasons or {"micro_batch_size": "7.5 of 22.1 GiB predicted; 4 would need 25.0 GiB"})
    return Plan(
        hardware=hw,
        model=m,
        data=ds,
        setup=ts,
        memory=mem,
        budget_gib=hw.budget_gib * 0.92 if g is not None else 16.0,
        gradient_accumulation_steps=4,
        lora_alpha=None if method == "full" else 2 * ts.lora_r,
        learning_rate=2e-5 if method == "full" else 2e-4,
        num_epochs=3,
        lr_scheduler="cosine",
        warmup_ratio=0.03,
        reasons=why,
        settings=settings_for(hw, ts, ds, why),
        chat=chat_for(m, ds),
    )


def chat_for(model: ModelSpec, data: DataSpec | None) -> ChatChoice | None:
    """The chat choice planner.plan makes for chat data (chat.decide), None otherwise."""
    return decide(model, data) if data is not None and data.type == "chat_template" else None


def with_setup(plan: Plan, **changes: Any) -> Plan:
    """The plan with setup changes, its settings decided again for the new setup."""
    setup = replace(plan.setup, **changes)
    return replace(
        plan,
        setup=setup,
        settings=settings_for(plan.hardware, setup, plan.data, plan.reasons),
        chat=chat_for(plan.model, plan.data),
    )


# A hand-written Axolotl config that validates, for validate's tests to edit.
MINIMAL = """\
base_model: meta-llama/Llama-3.2-1B
datasets:
  - path: qa.jsonl
    type: alpaca
learning_rate: 0.0002
micro_batch_size: 2
gradient_accumulation_steps: 4
"""


def write(tmp_path: Path, text: str, name: str = "train.yml") -> Path:
    """`text` as tmp_path/name (a config for validate to read)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path
