"""A rendered partial fine-tune reads back as the same setup (validate and trace size it)."""

from __future__ import annotations

from planner_helpers import POLICY, gpu, mdl, qa_data

from axo_helper import memory, planner
from axo_helper.config.read import method_of, setup_from_config
from axo_helper.config.render import render_plan


def test_freeze_config_reads_back_with_its_layers() -> None:
    model = mdl("meta-llama/Llama-3.2-3B")
    p = planner.plan(gpu("rtx4090"), model, qa_data(), POLICY, method="freeze")
    cfg = render_plan(p, output_dir="out", dataset_path="data/qa.jsonl").config
    assert method_of(cfg) == "freeze"
    setup = setup_from_config(cfg, model, 1)
    assert setup.method == "freeze"
    assert setup.trainable_layers == p.setup.trainable_layers
    assert setup.train_head == p.setup.train_head
    # validate's estimate of the file is the plan's
    assert memory.estimate(setup).trainable_params == p.memory.trainable_params


def test_a_config_without_unfrozen_parameters_is_full() -> None:
    assert method_of({"base_model": "x"}) == "full"
    assert method_of({"unfrozen_parameters": ["^lm_head.weight$"]}) == "freeze"
