"""config.templating: the one Jinja environment and its yaml / modelfile filters, against hostile strings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jinja2
import ollama_modelfile
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from render_fixtures import data_spec, hand_plan

from axo_helper import model as model_mod
from axo_helper.config.build import PLUGIN_RUN_DIR_KEY
from axo_helper.config.render import render_deepspeed, render_plan
from axo_helper.config.templating import modelfile_value, render_template, yaml_value


def render(plan: Any, **kw: Any) -> Any:
    kw.setdefault("output_dir", "out")
    kw.setdefault("dataset_path", "data/qa.jsonl")
    return render_plan(plan, **kw)


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
