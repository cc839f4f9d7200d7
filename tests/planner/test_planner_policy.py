"""planner.policy: presets/policy.yaml as a validated value."""

from __future__ import annotations

from pathlib import Path

import pytest
from planner_helpers import POLICY

from axo_helper import planner
from axo_helper.errors import AxoHelperError


# =========================================================================== policy
def test_policy_loads_and_budget_rule() -> None:
    assert POLICY.preference == ("full", "lora", "qlora")
    assert POLICY.budget(24.0) == pytest.approx(24.0 * 0.90)
    assert POLICY.budget(8.0) == pytest.approx(7.0)  # the 1 GiB floor wins on small cards
    assert POLICY.budget(80.0) == pytest.approx(72.0)
    assert POLICY.raw_memory_for(POLICY.budget(40.0)) == pytest.approx(40.0)


def test_policy_errors_name_the_key(tmp_path: Path) -> None:
    import yaml

    from axo_helper.resources import load_preset

    raw = yaml.safe_load(yaml.safe_dump(load_preset("policy.yaml")))
    raw["headroom"]["fraction"] = "lots"
    with pytest.raises(AxoHelperError, match=r"headroom\.fraction"):
        planner.parse_policy(raw)
    raw = yaml.safe_load(yaml.safe_dump(load_preset("policy.yaml")))
    del raw["batch"]["target_effective"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(AxoHelperError, match=r"batch\.target_effective"):
        planner.load_policy(path)
    raw["batch"]["target_effective"] = 32
    path.write_text(yaml.safe_dump(raw))
    assert planner.load_policy(path).target_effective_batch == 32


def test_policy_toolbox_keys_are_checked() -> None:
    import yaml

    from axo_helper.resources import load_preset

    def fresh() -> dict:
        return yaml.safe_load(yaml.safe_dump(load_preset("policy.yaml")))

    assert POLICY.partial_sharding == "zero2"
    assert any(v.activation_offloading for v in POLICY.ladder)
    raw = fresh()
    raw["ladder"].append(
        {"sharded": False, "optimizer": "default", "gradient_checkpointing": False,
         "activation_offloading": True}
    )
    with pytest.raises(AxoHelperError, match=r"activation_offloading"):
        planner.parse_policy(raw)
    raw = fresh()
    raw["distributed"]["partial"] = "zero3"
    with pytest.raises(AxoHelperError, match=r"distributed\.partial"):
        planner.parse_policy(raw)
    raw = fresh()
    raw["distributed"]["partial"] = None
    assert planner.parse_policy(raw).partial_sharding is None
    del raw["distributed"]["partial"]  # a policy written before the key: no partial step
    assert planner.parse_policy(raw).partial_sharding is None
