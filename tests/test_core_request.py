"""core.make_plan takes a typed PlanRequest, built from the CLI options in one place."""

from __future__ import annotations

import pytest

from axo_helper import core
from axo_helper.cli.options import plan_request
from axo_helper.core import PlanRequest


def test_make_plan_takes_only_a_request() -> None:
    """One typed way in: the old keyword form is gone."""
    with pytest.raises(TypeError):
        core.make_plan("rtx4090", "Qwen/Qwen2.5-0.5B", None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        core.make_plan(gpu="rtx4090", model="Qwen/Qwen2.5-0.5B")  # type: ignore[call-arg]


def test_cli_options_become_a_request() -> None:
    opts = {"gpu": "t4", "model": "m", "data": None, "method": None, "json_": True, "nodes": 2}
    assert plan_request(opts, allow_cpu=True) == PlanRequest(
        gpu="t4", model="m", nodes=2, allow_cpu=True
    )


def test_a_request_takes_no_other_arguments() -> None:
    with pytest.raises(TypeError):
        core.make_plan(PlanRequest(gpu="t4", model="m"), method="lora")


def test_a_resolved_hardware_is_not_detected_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from axo_helper import hardware as hardware_mod

    req = PlanRequest(gpu="rtx4090", model="Qwen/Qwen2.5-0.5B", method="lora")
    expected = core.make_plan(req)
    hw = hardware_mod.resolve("rtx4090")

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolved again")

    monkeypatch.setattr(hardware_mod, "resolve", boom)
    assert core.make_plan(req, hardware=hw) == expected
