"""chat: which chat template and turn terminator a conversational config names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from render_fixtures import hand_plan

from axo_helper import model as model_mod
from axo_helper.config.render import render_plan


def render(plan: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


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
