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
