"""tests/oom_plugin.py, the test-only plugin that fakes a CUDA OOM for `run`'s retry tests."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.axolotl
torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

import oom_plugin  # noqa: E402
from axolotl.utils.dict import DictDefault  # noqa: E402


def test_fault_injection_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = DictDefault({"micro_batch_size": 4})
    assert oom_plugin.fault_callback(cfg) is None
    monkeypatch.setenv(oom_plugin.FAULT_OOM_AT_STEP, "2")
    cb = oom_plugin.fault_callback(cfg)
    assert cb is not None
    state = type("S", (), {"global_step": 1})()
    cb.on_step_end(None, state, None)  # step 1: fine
    state.global_step = 2
    with pytest.raises(torch.OutOfMemoryError, match="CUDA out of memory"):
        cb.on_step_end(None, state, None)
    monkeypatch.setenv(oom_plugin.FAULT_OOM_ABOVE_MICRO_BATCH, "4")
    assert oom_plugin.fault_callback(cfg) is None  # micro batch 4 "fits"
    monkeypatch.setenv(oom_plugin.FAULT_OOM_ABOVE_MICRO_BATCH, "2")
    assert oom_plugin.fault_callback(cfg) is not None


def test_axolotl_loads_it_by_its_dotted_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from axolotl.integrations.base import load_plugin

    plugin = load_plugin(oom_plugin.PLUGIN)
    cfg = DictDefault({"micro_batch_size": 4})
    assert plugin.add_callbacks_post_trainer(cfg, trainer=None) == []  # no variable: inert
    for key, value in oom_plugin.oom_env(at_step=3).items():
        monkeypatch.setenv(key, value)
    (cb,) = plugin.add_callbacks_post_trainer(cfg, trainer=None)
    assert cb.at_step == 3


def test_oom_env_puts_the_tests_folder_on_the_childs_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = oom_plugin.oom_env(at_step=2, above_micro_batch=2)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(oom_plugin.TESTS_DIR), "/elsewhere"]
    assert (env[oom_plugin.FAULT_OOM_AT_STEP], env[oom_plugin.FAULT_OOM_ABOVE_MICRO_BATCH]) == (
        "2",
        "2",
    )
