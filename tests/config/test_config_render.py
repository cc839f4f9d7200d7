"""config.render: Plan -> commented YAML (+ DeepSpeed JSON), parsed back, checked, written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import Result
from render_fixtures import hand_plan

from axo_helper.config.render import render_deepspeed, render_plan, write_config
from axo_helper.errors import OutputExistsError
from axo_helper.validate.schema import schema_errors

ROOT = Path(__file__).resolve().parents[2]


def render(plan: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


def test_every_value_has_a_reason_and_the_header_says_how_to_check_and_run() -> None:
    r = render(hand_plan("rtx4090", method="qlora"), config_name="train.yml")
    text = r.yaml_text
    assert yaml.safe_load(text) == r.config
    assert text.startswith("# Axolotl config written by axo-helper ")
    header = text.split("\n\n", 1)[0]
    assert "axo-helper validate train.yml" in header
    assert "axo-helper run --config train.yml" in header
    assert "axolotl train train.yml" in header
    assert "QLoRA r=16 of meta-llama/Llama-3.2-1B" in header
    # Every top-level key line carries `  # reason`.
    for line in text.splitlines():
        if line and not line.startswith(("#", " ")):
            assert "  # " in line, line
    assert "micro_batch_size: 2  # 7.5 of 22.1 GiB predicted; 4 would need 25.0 GiB" in text
    assert schema_errors(r.config) == []


@pytest.mark.parametrize(
    ("strategy", "offload"),
    [("zero1", False), ("zero2", False), ("zero2", True), ("zero3", False), ("zero3", True)],
)
def test_deepspeed_config_is_written_beside_the_yaml(
    tmp_path: Path, strategy: str, offload: bool
) -> None:
    plan = hand_plan(
        "4xa100-80gb",
        model_name="meta-llama/Llama-3.1-8B",
        method="full",
        distributed=strategy,
        cpu_offload=offload,
    )
    ds_path = str(tmp_path / f"deepspeed_{strategy}{'_offload' if offload else ''}.json")
    r = render(plan, deepspeed_path=ds_path)
    assert r.config["deepspeed"] == ds_path and "fsdp_config" not in r.config
    written = write_config(r, tmp_path / "train.yml")
    assert written == [tmp_path / "train.yml", Path(ds_path)]
    ds = json.loads(Path(ds_path).read_text())
    assert ds["zero_optimization"]["stage"] == int(strategy[-1])
    assert ("offload_optimizer" in ds["zero_optimization"]) is offload
    assert ds["train_micro_batch_size_per_gpu"] == "auto"


def _fill_autos_like_the_hf_trainer(
    config: dict[str, Any], *, micro: int, accum: int, world: int, bf16: bool
) -> dict[str, Any]:
    """Run transformers' own HfTrainerDeepSpeedConfig over the JSON, as Trainer does."""
    from transformers.integrations.deepspeed import (
        HfTrainerDeepSpeedConfig,
        unset_hf_deepspeed_config,
    )

    args = SimpleNamespace(
        world_size=world,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum,
        max_grad_norm=1.0,
        learning_rate=2e-5,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        weight_decay=0.0,
        save_on_each_node=False,
        fp16=not bf16,
        fp16_full_eval=False,
        bf16=bf16,
        bf16_full_eval=False,
        get_warmup_steps=lambda n: 3,
    )
    hf = HfTrainerDeepSpeedConfig(config)
    try:
        hf.trainer_config_process(args)
        hf.trainer_config_finalize(
            args, SimpleNamespace(config=SimpleNamespace(hidden_size=4096)), 100
        )
        return dict(hf.config)
    finally:
        # transformers keeps a global weakref that from_pretrained consults: clear it.
        unset_hf_deepspeed_config()


@pytest.mark.axolotl
def test_deepspeed_parses_every_rendered_json_with_its_own_config_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("deepspeed")
    pytest.importorskip("transformers")
    import deepspeed.runtime.config as ds_config
    from deepspeed.runtime.config import DeepSpeedConfig

    # Without an initialized process group DeepSpeedConfig falls back to world size 1
    # (and then rejects train_batch_size for 8 GPUs); rank 0 plus an mpu gives it 8.
    monkeypatch.setattr(ds_config.dist, "get_rank", lambda *a, **k: 0)

    class DataParallel:  # the `mpu` DeepSpeed asks for the data-parallel world size
        def __init__(self, n: int):
            self.n = n

        def get_data_parallel_world_size(self) -> int:
            return self.n

    for strategy in ("zero1", "zero2", "zero3"):
        for offload in (False, True):
            raw = json.loads(render_deepspeed(strategy, cpu_offload=offload))
            filled = _fill_autos_like_the_hf_trainer(raw, micro=2, accum=4, world=8, bf16=True)
            ds = DeepSpeedConfig(filled, mpu=DataParallel(8))
            assert ds.zero_optimization_stage == int(strategy[-1])
            assert ds.train_batch_size == 2 * 4 * 8
            assert ds.bfloat16_config.enabled and not ds.float16_config.enabled
            assert ds.gradient_clipping == 1.0
            assert (
                ds.zero_config.offload_optimizer is not None
                if offload
                else ds.zero_config.offload_optimizer is None
            )
            if strategy == "zero3":
                assert ds.zero_config.gather_16bit_weights_on_model_save
                assert (ds.zero_config.offload_param is not None) is offload


def test_write_refuses_to_overwrite_without_force_and_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "train.yml"
    r = render(hand_plan())
    write_config(r, target)
    target.write_text("mine\n")
    with pytest.raises(OutputExistsError):
        write_config(r, target)
    assert target.read_text() == "mine\n"
    write_config(r, target, force=True)
    assert target.read_text() == r.yaml_text
    assert sorted(p.name for p in target.parent.iterdir()) == ["train.yml"]  # no temp files left


def test_existing_deepspeed_json_blocks_the_yaml_too(tmp_path: Path) -> None:
    plan = hand_plan("4xa100-80gb", method="full", distributed="zero3")
    r = render(plan, deepspeed_path=str(tmp_path / "deepspeed_zero3.json"))
    (tmp_path / "deepspeed_zero3.json").write_text("{}")
    with pytest.raises(OutputExistsError):
        write_config(r, tmp_path / "train.yml")
    assert not (tmp_path / "train.yml").exists()


def test_render_and_schema_import_neither_torch_nor_axolotl() -> None:
    probe = (
        "import sys, sys as _;"
        "sys.path.insert(0, 'tests');"
        "from render_fixtures import hand_plan;"
        "from axo_helper.config.render import render_plan;"
        "r = render_plan(hand_plan('rtx4090'), output_dir='o', dataset_path='d.jsonl');"
        "from axo_helper.validate.check import validate_text;"
        "rep = validate_text(r.yaml_text, run_axolotl=False);"
        "assert rep.valid, rep.errors;"
        "bad = [m for m in ('torch', 'transformers', 'axolotl', 'deepspeed') if m in sys.modules];"
        "assert not bad, bad"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_cli_render_writes_once_and_needs_force_to_overwrite(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    pytest.importorskip("axo_helper.memory")
    data = Path(str(ROOT / "axo_helper" / "demo_data" / "qa.jsonl"))
    out = tmp_path / "train.yml"
    args = [
        "render",
        "--gpu",
        "rtx4090",
        "--model",
        "meta-llama/Llama-3.2-1B",
        "--data",
        str(data),
        "-o",
        str(out),
    ]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    cfg = yaml.safe_load(out.read_text())
    assert cfg["datasets"][0]["path"] == str(data.resolve())
    assert cfg["output_dir"] == str(tmp_path / "output")
    again = cli(*args)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert cli(*args, "--force").exit_code == 0


def test_cli_render_without_data_is_a_usage_error(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    result = cli(
        "render",
        "--gpu",
        "rtx4090",
        "--model",
        "meta-llama/Llama-3.2-1B",
        "-o",
        str(tmp_path / "t.yml"),
    )
    assert result.exit_code == 2
    assert "--data" in result.output
