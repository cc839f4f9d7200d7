"""The rendered unfrozen_parameters, read by Axolotl 0.19 itself: which parameters train."""

from __future__ import annotations

from pathlib import Path

import pytest
from planner_helpers import POLICY, qa_data

pytest.importorskip("axolotl")
pytest.importorskip("transformers")

from axo_helper import hardware, model, planner
from axo_helper.config.render import render_plan


def test_axolotl_trains_exactly_the_last_blocks(tiny_model: Path) -> None:
    import torch
    from axolotl.utils.freeze import freeze_layers_except
    from transformers import AutoModelForCausalLM

    spec = model.inspect(str(tiny_model))
    p = planner.plan(
        hardware.resolve("cpu", allow_cpu=True), spec, qa_data(), POLICY, method="freeze",
        freeze_layers=1, cpu_memory_gib=8.0,
    )
    cfg = render_plan(p, output_dir="out", dataset_path="data/qa.jsonl").config
    net = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    freeze_layers_except(net, cfg["unfrozen_parameters"])
    trained = {n for n, q in net.named_parameters() if q.requires_grad}
    last = spec.num_layers - 1
    assert trained, cfg["unfrozen_parameters"]
    assert all(n.startswith((f"model.layers.{last}.", "model.norm.")) for n in trained), trained
    # every parameter of the last block and the final norm trains, nothing else does
    expected = {
        n for n, _ in net.named_parameters() if n.startswith((f"model.layers.{last}.", "model.norm."))
    }
    assert trained == expected
