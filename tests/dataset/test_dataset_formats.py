"""dataset.inspect: which Axolotl dataset type each row format is detected as."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_rows import (
    ALPACA,
    ALPACA_IN,
    IO,
    OPENAI,
    SHAREGPT,
    error,
    write_jsonl,
)

from axo_helper.dataset import (
    axolotl_dataset_entry,
    inspect,
)


def test_alpaca_with_and_without_input(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [ALPACA, ALPACA_IN, ALPACA]))
    assert spec.type == "alpaca"
    assert spec.fields == {}  # plain `type: alpaca`
    assert spec.rows == 3 and spec.sampled_rows == 3
    assert spec.keys == ("instruction", "input", "output")
    assert spec.file_format == "jsonl"
    assert spec.approximate is True and spec.tokenizer is None
    assert axolotl_dataset_entry(spec) == {"path": str(tmp_path / "a.jsonl"), "type": "alpaca"}


def test_alpaca_without_input_key(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}]))
    assert (spec.type, spec.fields) == ("alpaca", {})


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"question": "Why?", "answer": "Because."},
            {"field_instruction": "question", "field_output": "answer"},
        ),
        (
            {"instruction": "Sum up.", "context": "Long text.", "response": "Short."},  # Dolly
            {
                "field_instruction": "instruction",
                "field_input": "context",
                "field_output": "response",
            },
        ),
        (
            {"prompt": "2+2=", "completion": " 4"},
            {"field_instruction": "prompt", "field_output": "completion"},
        ),
        (
            {"instruction": "Hi", "input": "", "output": "Yo", "system": "Be nice."},
            {
                "field_instruction": "instruction",
                "field_input": "input",
                "field_output": "output",
                "field_system": "system",
            },
        ),
    ],
)
def test_alpaca_like_keys_map_to_user_defined_type(
    tmp_path: Path, row: dict[str, str], expected: dict[str, str]
) -> None:
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [row, row]))
    assert spec.type == "alpaca"
    assert {k: v for k, v in spec.fields.items() if k.startswith("field_")} == expected
    assert "{instruction}" in spec.fields["format"] and "{input}" in spec.fields["format"]
    assert "{input}" not in spec.fields["no_input_format"]
    entry = axolotl_dataset_entry(spec)
    assert entry["type"] == spec.fields  # the mapping is the value of `type:`


def test_alpaca_keys_win_over_a_text_column(tmp_path: Path) -> None:
    # tatsu-lab/alpaca rows carry the rendered prompt in "text" as well.
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [{**ALPACA, "text": "rendered"}]))
    assert spec.type == "alpaca"


def test_chat_openai_keys(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "c.jsonl", [OPENAI, OPENAI]))
    assert spec.type == "chat_template"
    assert spec.fields == {
        "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
    }
    assert spec.roles == ("assistant", "system", "user")
    assert spec.warnings == ()
    entry = axolotl_dataset_entry(spec)
    assert entry["type"] == "chat_template" and entry["field_messages"] == "messages"


def test_chat_sharegpt_keys(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "c.jsonl", [SHAREGPT]))
    assert spec.type == "chat_template"
    assert spec.fields == {
        "field_messages": "conversations",
        "message_property_mappings": {"role": "from", "content": "value"},
    }
    assert spec.roles == ("gpt", "human")


def test_chat_roles_outside_axolotl_defaults_warn(tmp_path: Path) -> None:
    row = {"messages": [{"role": "narrator", "content": "x"}, {"role": "user", "content": "y"}]}
    spec = inspect(write_jsonl(tmp_path / "c.jsonl", [row]))
    assert spec.roles == ("narrator", "user")
    assert any("narrator" in w and "roles:" in w for w in spec.warnings)


def test_chat_message_without_role_key_is_an_error(tmp_path: Path) -> None:
    row = {"messages": [{"role": "user", "content": "x"}, {"content": "no role"}]}
    e = error(write_jsonl(tmp_path / "c.jsonl", [OPENAI, row]))
    assert "c.jsonl:2" in e.message and "'role'" in e.message


def test_chat_messages_not_a_list_is_an_error(tmp_path: Path) -> None:
    e = error(write_jsonl(tmp_path / "c.jsonl", [{"messages": "hello"}]))
    assert "c.jsonl:1" in e.message and "list of messages" in e.message


def test_empty_conversations_warn_and_count(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "c.jsonl", [OPENAI, {"messages": []}]))
    assert spec.rows == 2
    assert any("empty conversation" in w and "c.jsonl:2" in w for w in spec.warnings)


def test_completion(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "t.jsonl", [{"text": "Once upon a time."}]))
    assert (spec.type, spec.fields) == ("completion", {"field": "text"})
    assert axolotl_dataset_entry(spec)["field"] == "text"


def test_input_output(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "io.jsonl", [IO, IO]))
    assert (spec.type, spec.fields, spec.rows) == ("input_output", {}, 2)


def test_input_output_bad_segment_is_an_error(tmp_path: Path) -> None:
    bad = {"segments": [{"text": "no label"}]}
    e = error(write_jsonl(tmp_path / "io.jsonl", [IO, bad]))
    assert "io.jsonl:2" in e.message and "segments" in e.message


def test_txt_lines_are_completion_rows(tmp_path: Path) -> None:
    p = tmp_path / "corpus.txt"
    p.write_text("first line\n\nsecond line\nthird\n", encoding="utf-8")
    spec = inspect(p)
    assert (spec.type, spec.rows, spec.file_format) == ("completion", 3, "txt")
