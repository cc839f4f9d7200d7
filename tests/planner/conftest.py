"""The planner tests' toy estimator, as a fixture (tests/planner_helpers.py holds the rest)."""

from __future__ import annotations

import pytest
from planner_helpers import mdl, toy_estimate

from axo_helper import planner
from axo_helper.specs import ModelSpec


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    monkeypatch.setattr(planner.memory, "estimate", toy_estimate)
    # hidden 4096: the busy cap is then 2048 / seq_len micro-batch samples.
    return mdl("meta-llama/Llama-3.1-8B")
