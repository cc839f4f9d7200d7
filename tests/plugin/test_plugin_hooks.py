"""AxoHelperPlugin: inert without its keys, its args merge into Axolotl's schema, and
the shipped plugin carries no fault injection."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.axolotl
torch = pytest.importorskip("torch")
pytest.importorskip("axolotl")

from axolotl.utils.dict import DictDefault  # noqa: E402

from axo_helper.plugin import AxoHelperArgs, AxoHelperPlugin  # noqa: E402
from axo_helper.plugin.callback import MetricsCallback  # noqa: E402


def test_plugin_is_inert_without_its_keys() -> None:
    plugin = AxoHelperPlugin()
    assert plugin.add_callbacks_post_trainer(DictDefault({"plugins": []}), trainer=None) == []
    plugin.post_train(DictDefault({}), model=None)  # nothing to finish, nothing raised
    assert plugin.get_input_args() == "axo_helper.plugin.AxoHelperArgs"
    fields = AxoHelperArgs.model_fields
    assert all(f.startswith("axo_helper_") and fields[f].default is None for f in fields)


def test_input_args_merge_into_axolotls_schema() -> None:
    from axolotl.integrations.base import PluginManager
    from axolotl.integrations.config import merge_input_args

    manager = PluginManager.get_instance()
    manager.register("axo_helper.plugin.AxoHelperPlugin")
    try:
        _, input_config = merge_input_args()
        assert "axo_helper_run_dir" in input_config.model_fields
    finally:
        manager.plugins.pop("axo_helper.plugin.AxoHelperPlugin", None)


def test_the_entry_point_and_the_yaml_name_load_the_plugin() -> None:
    from importlib.metadata import entry_points

    from axolotl.integrations.base import load_plugin

    assert isinstance(load_plugin("axo_helper.plugin.AxoHelperPlugin"), AxoHelperPlugin)
    (ep,) = [e for e in entry_points(group="axolotl.plugins") if e.name == "axo_helper"]
    assert ep.load() is AxoHelperPlugin


def test_the_shipped_plugin_injects_no_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OOM seam moved to tests/oom_plugin.py: its variables mean nothing here.
    monkeypatch.setenv("AXO_HELPER_FAULT_OOM_AT_STEP", "1")
    trainer = type("Trainer", (), {"model": torch.nn.Linear(2, 2)})()
    cfg = DictDefault({"axo_helper_run_dir": str(tmp_path), "micro_batch_size": 4})
    callbacks = AxoHelperPlugin().add_callbacks_post_trainer(cfg, trainer)
    assert [type(cb) for cb in callbacks] == [MetricsCallback]
    callbacks[0].counter.detach()
