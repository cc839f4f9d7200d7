"""render: Plan -> commented Axolotl YAML (+ DeepSpeed JSON), parsed back and checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import ollama_modelfile
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from render_fixtures import data_spec, hand_plan, with_setup

from axo_helper import model as model_mod
from axo_helper.cli import cli
from axo_helper.errors import OutputExistsError
from axo_helper.render import (
    PLUGIN,
    PLUGIN_RUN_DIR_KEY,
    modelfile_value,
    render_deepspeed,
    render_plan,
    render_template,
    write_config,
    yaml_value,
)
from axo_helper.validate import schema_errors

ROOT = Path(__file__).resolve().parent.parent


def render(plan: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


# --------------------------------------------------------------------------- layout
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


def test_qlora_on_a_gpu() -> None:
    cfg = render(hand_plan("rtx4090", method="qlora")).config
    assert cfg["adapter"] == "qlora"
    assert cfg["load_in_4bit"] is True and cfg["load_in_8bit"] is False
    assert cfg["lora_r"] == 16 and cfg["lora_alpha"] == 32 and cfg["lora_target_linear"] is True
    assert cfg["bf16"] is True and cfg["fp16"] is False and cfg["tf32"] is True
    assert cfg["attn_implementation"] == "flash_attention_2"
    assert "flash_attention" not in cfg and "sdp_attention" not in cfg
    assert cfg["gradient_checkpointing"] is True
    assert cfg["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    assert cfg["sample_packing"] is True and cfg["pad_to_sequence_len"] is True
    assert cfg["micro_batch_size"] == 2 and cfg["gradient_accumulation_steps"] == 4
    # Explicit, so Axolotl does not auto-enable them behind the config's back.
    assert cfg["lora_mlp_kernel"] is True and cfg["lora_embedding_kernel"] is True
    eight_bit = render(hand_plan("rtx4090", method="lora", load_in_8bit=True)).config
    assert eight_bit["load_in_8bit"] is True and eight_bit["lora_qkv_kernel"] is False


def test_t4_gets_fp16_and_sdpa_and_no_tf32() -> None:
    cfg = render(hand_plan("t4", method="lora")).config
    assert (cfg["bf16"], cfg["fp16"], cfg["tf32"]) == (False, True, False)
    assert cfg["attn_implementation"] == "sdpa"


def test_cpu_turns_every_16bit_flag_and_the_lora_kernels_off() -> None:
    cfg = render(hand_plan("cpu", method="lora")).config
    assert (cfg["bf16"], cfg["fp16"], cfg["tf32"]) == (False, False, False)
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
        assert cfg[key] is False


def test_full_fine_tune_has_no_adapter_keys() -> None:
    cfg = render(hand_plan("a100-80gb", method="full")).config
    assert "adapter" not in cfg and "lora_r" not in cfg
    assert cfg["load_in_4bit"] is False and cfg["load_in_8bit"] is False
    assert cfg["learning_rate"] == 2e-5


def test_gradient_checkpointing_off_has_no_kwargs() -> None:
    cfg = render(hand_plan(gradient_checkpointing=False)).config
    assert cfg["gradient_checkpointing"] is False
    assert "gradient_checkpointing_kwargs" not in cfg


# --------------------------------------------------------------------------- datasets
def test_chat_dataset_with_sharegpt_keys_and_the_models_own_template(tiny_model: Path) -> None:
    spec = model_mod.inspect(str(tiny_model))
    cfg = render(hand_plan("cpu", spec=spec)).config
    (ds,) = cfg["datasets"]
    assert ds == {
        "path": "data/qa.jsonl",
        "ds_type": "json",
        "type": "chat_template",
        "field_messages": "conversations",
        "message_property_mappings": {"role": "from", "content": "value"},
        "roles_to_train": ["assistant"],
    }
    assert cfg["chat_template"] == "tokenizer_default"
    assert cfg["eot_tokens"] == ["<|im_end|>"]  # found in the tiny model's template and vocab
    assert cfg["base_model"] == str(tiny_model)


def test_chat_dataset_for_a_model_without_template_names_one_for_its_family() -> None:
    spec = replace(model_mod.inspect("meta-llama/Llama-3.2-1B"), chat_template=False)
    cfg = render(hand_plan(spec=spec)).config
    assert cfg["chat_template"] == "llama3"
    assert cfg["eot_tokens"] == ["<|eot_id|>"]
    odd = replace(spec, family="somethingnew", model_type="somethingnew")
    cfg = render(hand_plan(spec=odd)).config
    assert cfg["chat_template"] == "chatml" and "eot_tokens" not in cfg


def test_alpaca_standard_and_custom_keys(tmp_path: Path) -> None:
    import json

    from axo_helper import dataset

    cfg = render(hand_plan(kind="alpaca")).config
    assert cfg["datasets"][0]["type"] == "alpaca"
    assert "chat_template" not in cfg
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(
        json.dumps({"question": f"q{i}?", "answer": f"a{i}.", "system": "Be brief."}) + "\n"
        for i in range(20)
    ))
    spec = dataset.inspect(qa)
    ds = render(hand_plan(data=spec), dataset_path=str(qa)).config["datasets"][0]
    # The mapping and the prompt format the token counts assumed go through unchanged.
    assert ds["type"] == spec.fields
    assert ds["type"]["field_instruction"] == "question"
    assert ds["type"]["field_output"] == "answer"
    assert ds["type"]["field_system"] == "system"
    assert "{instruction}" in ds["type"]["format"]
    assert "system_format" in ds["type"]


def test_completion_and_parquet() -> None:
    data = data_spec(
        "completion", fields={"field": "body"}, file_format="parquet", path="d.parquet"
    )
    ds = render(hand_plan(data=data), dataset_path="d.parquet").config["datasets"][0]
    assert ds == {"path": "d.parquet", "ds_type": "parquet", "type": "completion", "field": "body"}


def test_small_data_gets_no_eval_split() -> None:
    cfg = render(hand_plan(data=data_spec(rows=120))).config
    assert cfg["val_set_size"] == 0.0 and "evals_per_epoch" not in cfg
    cfg = render(hand_plan(data=data_spec(rows=50_000))).config
    assert 0 < cfg["val_set_size"] < 0.1 and cfg["evals_per_epoch"] >= 1


# --------------------------------------------------------------------------- plugin, overrides
def test_plugin_is_listed_only_with_a_run_dir() -> None:
    plan = hand_plan()
    assert "plugins" not in render(plan).config
    cfg = render(plan, run_dir="runs/demo", output_dir="runs/demo/output").config
    assert cfg["plugins"] == [PLUGIN]
    assert cfg[PLUGIN_RUN_DIR_KEY] == "runs/demo"
    assert cfg["axo_helper_predicted_gib"] == 7.5
    assert cfg["output_dir"] == "runs/demo/output"


def test_overrides_land_under_extra_settings() -> None:
    r = render(hand_plan("cpu"), overrides={"max_steps": 3, "micro_batch_size": 1})
    assert r.config["max_steps"] == 3 and r.config["micro_batch_size"] == 1
    extra = r.yaml_text.split("# ---- extra settings", 1)[1]
    assert "max_steps: 3" in extra and "micro_batch_size: 1" in extra
    assert r.yaml_text.count("micro_batch_size:") == 1


# --------------------------------------------------------------------------- several GPUs
def test_fsdp2_block() -> None:
    plan = hand_plan(
        "8xh100", model_name="meta-llama/Llama-3.1-8B", method="full", distributed="fsdp"
    )
    cfg = render(plan).config
    assert cfg["fsdp_version"] == 2
    fc = cfg["fsdp_config"]
    assert fc["transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fc["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fc["activation_checkpointing"] is True
    # transformers refuses both kinds of checkpointing at once
    assert cfg["gradient_checkpointing"] is False
    assert "deepspeed" not in cfg
    qlora = render(with_setup(plan, method="qlora")).config
    assert qlora["fsdp_config"]["cpu_ram_efficient_loading"] is False


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


# --------------------------------------------------------------------------- hostile strings
HOSTILE = [
    "quote \" and ' both",
    "new\nline: injected: true",
    "key: value",
    "# not a comment",
    "{{ jinja }} {% raw %}",
    "!!python/object/apply:os.system ['echo pwned']",
    "- leading dash",
    "ünïcødé ✓ 😀 中文",
    "trailing space ",
    "a #b c",
    "line\u2028separator\x85next",
    "tab\there",
    "null",
    "1e5",
    "&anchor *alias",
    "[flow, list]",
    "@at `tick` %percent |pipe >gt",
]


def test_hostile_strings_stay_exactly_the_values_they_were() -> None:
    base = model_mod.inspect("meta-llama/Llama-3.2-1B")
    for i, evil in enumerate(HOSTILE):
        spec = replace(base, name=evil, hf_id=evil)
        data = data_spec(
            "chat_template",
            fields={
                "field_messages": evil,
                "message_property_mappings": {"role": evil, "content": evil + "2"},
            },
        )
        plan = hand_plan(
            spec=spec,
            data=data,
            reasons={"micro_batch_size": evil, "method": evil + "\nadapter: full"},
        )
        r = render_plan(
            plan,
            output_dir=evil,
            dataset_path=evil,
            run_dir=evil,
            dataset_prepared_path=evil,
            config_name=evil,
        )
        parsed = yaml.safe_load(r.yaml_text)
        expected_keys = set(render(hand_plan(), run_dir="r").config)
        assert set(parsed) == expected_keys, (i, evil)
        assert parsed["base_model"] == evil
        assert parsed["output_dir"] == evil
        assert parsed[PLUGIN_RUN_DIR_KEY] == evil
        assert parsed["dataset_prepared_path"] == evil
        assert parsed["adapter"] == "lora"
        assert parsed["micro_batch_size"] == 2
        (ds,) = parsed["datasets"]
        assert ds["path"] == evil and ds["field_messages"] == evil
        assert ds["message_property_mappings"] == {"role": evil, "content": evil + "2"}
        assert parsed == r.config


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.none(),
        st.lists(st.text(), max_size=3),
        st.dictionaries(st.text(min_size=1), st.text(), max_size=3),
    )
)
def test_yaml_filter_round_trips_anything_on_one_line(value: Any) -> None:
    text = yaml_value(value)
    assert "\n" not in text and "\u2028" not in text and "\x85" not in text
    assert yaml.safe_load(f"k: {text}  # comment\n") == {"k": value}


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from('"\n \tab#\r')) | st.text(),
    st.sampled_from(["raw", "double", "triple"]),
)
def test_modelfile_filter_reads_back_in_ollamas_parser_or_refuses(value: str, prefer: str) -> None:
    try:
        written = modelfile_value(value, prefer)
    except ValueError:
        # Only a line ending in triple quotes, or a character Ollama drops, is refused.
        lines = value.replace("\r", "\n").split("\n")[:-1]
        assert any(line.rstrip().endswith('"""') for line in lines) or not all(
            c.isprintable() or c in "\t\r\n" for c in value
        )
        return
    text = f"FROM x\nTEMPLATE {written}\nPARAMETER stop {written}\n"
    assert ollama_modelfile.parse(text) == [("model", "x"), ("template", value), ("stop", value)]


def test_render_template_uses_the_one_strict_environment() -> None:
    assert render_template("deepspeed/zero2.json.j2", offload=False) == render_deepspeed("zero2")
    with pytest.raises(jinja2.UndefinedError):
        render_template("deepspeed/zero2.json.j2")


# --------------------------------------------------------------------------- writing
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
        "from axo_helper.render import render_plan;"
        "r = render_plan(hand_plan('rtx4090'), output_dir='o', dataset_path='d.jsonl');"
        "from axo_helper.validate import validate_text;"
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


# --------------------------------------------------------------------------- CLI
def test_cli_render_writes_once_and_needs_force_to_overwrite(tmp_path: Path) -> None:
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
    runner = CliRunner()
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    cfg = yaml.safe_load(out.read_text())
    assert cfg["datasets"][0]["path"] == str(data.resolve())
    assert cfg["output_dir"] == str(tmp_path / "output")
    again = runner.invoke(cli, args)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert runner.invoke(cli, [*args, "--force"]).exit_code == 0


def test_cli_render_without_data_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "render",
            "--gpu",
            "rtx4090",
            "--model",
            "meta-llama/Llama-3.2-1B",
            "-o",
            str(tmp_path / "t.yml"),
        ],
    )
    assert result.exit_code == 2
    assert "--data" in result.output


def test_moe_qlora_renders_named_targets_that_axolotl_accepts() -> None:
    """quantize_moe_experts with lora_target_linear is refused by Axolotl 0.19 and the schema."""
    from axo_helper import core, validate

    plan = core.make_plan("a100-80gb", "mistralai/Mixtral-8x7B-v0.1", None, method="qlora",
                          use_calibration=False)
    plan = replace(plan, data=data_spec("chat_template"))
    cfg = render(plan).config
    assert cfg["quantize_moe_experts"] is True
    assert "lora_target_linear" not in cfg
    assert cfg["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    both = {**cfg, "lora_target_linear": True}
    report = validate.validate_text(yaml.safe_dump(both), run_axolotl=False)
    assert any("quantize_moe_experts" in e.message for e in report.errors)


def test_a_fixed_seed_makes_the_data_order_repeatable() -> None:
    # Axolotl 0.19 shuffles the prepared data with cfg.seed; unset, every run differs.
    text = render(hand_plan()).yaml_text
    assert render(hand_plan()).config["seed"] == 42
    assert "seed: 42  # fixed data order" in text
