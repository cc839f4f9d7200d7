"""core.make_plan takes a typed PlanRequest; the keyword form still works."""

from __future__ import annotations

import pytest

from axo_helper import core
from axo_helper.cli.options import plan_request
from axo_helper.core import PlanRequest


def test_request_and_keywords_give_the_same_plan() -> None:
    req = PlanRequest(gpu="rtx4090", model="Qwen/Qwen2.5-0.5B", method="lora", seq_len=1024)
    by_request = core.make_plan(req)
    assert (
        core.make_plan("rtx4090", "Qwen/Qwen2.5-0.5B", None, method="lora", seq_len=1024)
        == by_request
    )
    assert (
        core.make_plan(gpu="rtx4090", model="Qwen/Qwen2.5-0.5B", method="lora", seq_len=1024)
        == by_request
    )


def test_cli_options_become_a_request() -> None:
    opts = {"gpu": "t4", "model": "m", "data": None, "method": None, "json_": True, "nodes": 2}
    assert plan_request(opts, allow_cpu=True) == PlanRequest(
        gpu="t4", model="m", nodes=2, allow_cpu=True
    )


def test_a_request_takes_no_other_arguments() -> None:
    with pytest.raises(TypeError):
        core.make_plan(PlanRequest(gpu="t4", model="m"), method="lora")
