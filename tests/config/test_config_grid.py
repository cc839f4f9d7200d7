"""The grid: GPU classes x model presets x {full, lora, qlora} x {alpaca, chat, completion}.

Every cell is planned by the real planner. A cell either renders a config that
passes the JSON Schema and Axolotl's own `validate_config` (for that GPU's
capabilities), or the planner refuses it cleanly ("nothing fits": full fine-tuning
of a 7B model on a 16 GB T4). The Axolotl half is marked `axolotl`: it runs where
the [train] extra is installed (CI) and is skipped cleanly elsewhere. Axolotl is
imported once per session; each validation then takes ~0.1 s.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from render_fixtures import data_spec

from axo_helper import hardware, model, planner
from axo_helper.config.render import RenderedConfig, render_plan
from axo_helper.errors import PlanError
from axo_helper.specs import Hardware, Method, Plan
from axo_helper.validate.lines import LineMap
from axo_helper.validate.schema import schema_errors
from axo_helper.versions import axolotl_installed

ROOT = Path(__file__).resolve().parents[2]

# Turing (fp16, sdpa), Ada consumer 24 GB, Ampere 80 GB, and 8 Hopper GPUs (DDP/ZeRO).
GPUS = ("t4", "rtx4090", "a100-80gb", "8xh100")
MODELS = (
    "HuggingFaceTB/SmolLM2-135M",  # llama, tied embeddings
    "Qwen/Qwen2.5-0.5B",  # qwen2, qkv bias
    "Qwen/Qwen3-0.6B",  # qwen3, qk norm
    "meta-llama/Llama-3.2-1B",  # llama 3
    "google/gemma-2-2b",  # gemma2, soft-capping
    "mistralai/Mistral-7B-v0.3",  # mistral, 7B: full does not fit one consumer GPU
)
METHODS = ("full", "lora", "qlora")
KINDS = ("alpaca", "chat_template", "completion")
# Several-GPU strategies forced on an 8B model, so ZeRO-1/2/3 (+offload) and FSDP2 are all rendered.
FORCED = (
    ("8xh100", "meta-llama/Llama-3.1-8B", "full", "zero1"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "full", "zero2"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "full", "zero3"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "full", "fsdp"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "lora", "zero3"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "lora", "fsdp"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "qlora", "zero2"),
    ("8xh100", "meta-llama/Llama-3.1-8B", "qlora", "fsdp"),
    ("4xrtx4090", "meta-llama/Llama-3.1-8B", "full", "zero3"),
    ("4xrtx4090", "meta-llama/Llama-3.1-8B", "lora", "fsdp"),
)


@dataclass(frozen=True)
class Cell:
    gpu: str
    model: str
    method: str
    kind: str
    distributed: str | None = None

    @property
    def id(self) -> str:
        tail = f"-{self.distributed}" if self.distributed else ""
        return f"{self.gpu}-{self.model.split('/')[-1]}-{self.method}-{self.kind}{tail}"


CELLS = [Cell(g, m, meth, k) for g in GPUS for m in MODELS for meth in METHODS for k in KINDS] + [
    Cell(g, m, meth, "chat_template", d) for g, m, meth, d in FORCED
]


@dataclass(frozen=True)
class Outcome:
    hardware: Hardware
    plan: Plan | None
    rendered: RenderedConfig | None
    refusal: PlanError | None


@functools.cache
def _policy() -> planner.Policy:
    return planner.load_policy()


@functools.cache
def outcome(cell: Cell) -> Outcome:
    hw = hardware.resolve(cell.gpu)
    spec = model.inspect(cell.model)
    try:
        plan = planner.plan(
            hw,
            spec,
            data_spec(cell.kind),
            _policy(),
            method=cast(Method, cell.method),
            distributed=cell.distributed,
        )
    except PlanError as exc:
        return Outcome(hw, None, None, exc)
    # The plugin entry on one GPU class, so its keys are validated too (with the
    # plugin merged in, each Axolotl validation costs ~0.2 s instead of ~0.1 s).
    run_dir = "runs/grid" if cell.gpu == "rtx4090" else None
    rendered = render_plan(
        plan,
        output_dir="runs/grid/output",
        dataset_path="data/train.jsonl",
        run_dir=run_dir,
        deepspeed_path="runs/grid/deepspeed.json",
    )
    return Outcome(hw, plan, rendered, None)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_cell_renders_and_passes_the_schema_or_is_refused_cleanly(cell: Cell) -> None:
    o = outcome(cell)
    if o.rendered is None:
        assert o.refusal is not None
        # Only a method forced beyond the GPU may be refused, and it says why.
        assert "nothing fits" in o.refusal.message, o.refusal.message
        return
    assert o.plan is not None
    cfg = o.rendered.config
    assert schema_errors(cfg, o.rendered.yaml_text) == []
    assert cfg["micro_batch_size"] == o.plan.setup.micro_batch_size
    assert cfg["sequence_len"] == o.plan.setup.sequence_len
    assert (cfg.get("adapter") or "full") == cell.method
    assert cfg["datasets"][0]["type"] == (
        "chat_template" if cell.kind == "chat_template" else cell.kind
    )
    assert (
        isinstance(cfg["bf16"], bool)
        and isinstance(cfg["fp16"], bool)
        and isinstance(cfg["tf32"], bool)
    )
    assert not (cfg["bf16"] and cfg["fp16"])
    if cell.distributed:
        assert o.plan.setup.distributed == cell.distributed
    if o.plan.setup.distributed in ("zero1", "zero2", "zero3"):
        assert o.rendered.deepspeed_json is not None
        ds = json.loads(o.rendered.deepspeed_json)
        assert ds["zero_optimization"]["stage"] == int(o.plan.setup.distributed[-1])
    if o.plan.setup.distributed == "fsdp":
        assert cfg["fsdp_version"] == 2 and cfg["fsdp_config"]["transformer_layer_cls_to_wrap"]


def test_the_grid_is_big_and_covers_every_strategy() -> None:
    rendered = [outcome(c) for c in CELLS if outcome(c).rendered is not None]
    assert len(rendered) >= 100
    strategies = {o.plan.setup.distributed for o in rendered if o.plan is not None}
    assert {"none", "ddp", "zero1", "zero2", "zero3", "fsdp"} <= strategies
    precisions = {o.plan.setup.precision for o in rendered if o.plan is not None}
    assert {"bf16", "fp16"} <= precisions
    # A refusal is the exception, not the rule.
    assert len(rendered) >= 0.85 * len(CELLS)


# --------------------------------------------------------------------------- Axolotl
@pytest.fixture(scope="module")
def axolotl_check() -> Any:
    if not axolotl_installed():
        pytest.skip("Axolotl is not installed (the [train] extra); CI runs this")
    from axo_helper.validate.axolotl import axolotl_check as check

    return check


@pytest.mark.axolotl
@pytest.mark.parametrize(
    "cell", [c for c in CELLS if outcome(c).rendered is not None], ids=lambda c: c.id
)
def test_cell_passes_axolotls_own_validation(cell: Cell, axolotl_check: Any) -> None:
    # Cells the planner refuses are checked by the schema test above.
    o = outcome(cell)
    assert o.rendered is not None
    errors, warnings, _ = axolotl_check(
        o.rendered.config, LineMap(o.rendered.yaml_text), o.hardware
    )
    assert errors == [], [e.format() for e in errors]
    # Our own choices never make Axolotl warn that it changed or doubts them.
    doubts = [
        w.message for w in warnings if "Auto-enabling" in w.message or "deprecated" in w.message
    ]
    assert doubts == []


def _cached(module: Any) -> list[Any]:
    return [f for f in vars(module).values() if hasattr(f, "cache_clear")]


@pytest.mark.parametrize("minor", ["0.19", "0.20", "0.21"])
def test_every_rendered_cell_passes_each_shipped_schema(
    minor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a laptop without Axolotl validate uses the newest schema; with Axolotl, its
    own version's. Every config the planner renders passes each of them."""
    from axo_helper.validate import schema as schema_mod

    assert (int(minor[0]), int(minor[2:])) in schema_mod.shipped_schemas()
    monkeypatch.setattr(schema_mod, "version", lambda dist: f"{minor}.0")
    for f in _cached(schema_mod):
        f.cache_clear()
    try:
        assert schema_mod.schema_choice().axolotl == minor
        failures = [
            (c.id, errors)
            for c in CELLS
            if (r := outcome(c).rendered) is not None
            and (errors := schema_errors(r.config, r.yaml_text))
        ]
        assert failures == []
    finally:
        monkeypatch.undo()
        for f in _cached(schema_mod):
            f.cache_clear()
