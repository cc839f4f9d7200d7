"""dataset.inspect errors: mixed or unknown formats, bad paths, bytes and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_rows import (
    ALPACA,
    OPENAI,
    SHAREGPT,
    error,
    write_jsonl,
)

from axo_helper.dataset import (
    inspect,
)
from axo_helper.errors import DatasetError


def test_mixed_formats_in_one_file(tmp_path: Path) -> None:
    e = error(write_jsonl(tmp_path / "m.jsonl", [ALPACA, ALPACA, OPENAI]))
    assert "mixed dataset formats" in e.message
    assert "m.jsonl:3" in e.message and "m.jsonl:1" in e.message
    assert "chat_template" in e.message and "alpaca" in e.message
    assert e.exit_code == 1


def test_openai_and_sharegpt_rows_are_mixed(tmp_path: Path) -> None:
    sharegpt_in_messages = {"messages": [{"from": "human", "value": "hi"}]}
    e = error(write_jsonl(tmp_path / "m.jsonl", [OPENAI, sharegpt_in_messages]))
    assert "OpenAI" in e.message and "ShareGPT" in e.message


def test_mixed_formats_across_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    write_jsonl(tmp_path / "b.jsonl", [SHAREGPT])
    e = error(tmp_path)
    assert "a.jsonl:1" in e.message and "b.jsonl:1" in e.message


def test_unknown_format_lists_keys_and_accepted_formats(tmp_path: Path) -> None:
    e = error(write_jsonl(tmp_path / "u.jsonl", [{"foo": 1, "bar": 2}]))
    assert "'foo'" in e.message and "'bar'" in e.message and "u.jsonl:1" in e.message
    assert e.hint is not None
    for name in ("alpaca", "chat_template", "completion", "input_output"):
        assert name in e.hint


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    e = error(tmp_path / "nope.jsonl")
    assert e.exit_code == 2 and "does not exist" in e.message


def test_unsupported_suffix_is_a_usage_error(tmp_path: Path) -> None:
    p = tmp_path / "data.jsonl.gz"
    p.write_bytes(b"\x1f\x8b")
    e = error(p)
    assert e.exit_code == 2 and ".gz" in e.message


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(content)
    assert "no rows" in error(p).message


def test_empty_directory(tmp_path: Path) -> None:
    assert "contains no" in error(tmp_path).message


def test_directory_of_empty_files(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.jsonl").write_text("\n")
    assert "holds no rows" in error(tmp_path).message


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "b.jsonl"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "binary" in error(p).message


def test_nul_bytes_past_the_sniff_window_report_the_line(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "b.jsonl", [{"text": "x" * 100}] * 200)  # > 8 KiB
    with p.open("ab") as fh:
        fh.write(b'{"text": "a\x00b"}\n')
    e = error(p)
    assert "b.jsonl:201" in e.message and "NUL" in e.message


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "l.jsonl"
    p.write_bytes('{"text": "café"}\n'.encode("latin-1"))
    assert "not UTF-8" in error(p).message


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.json", "bom.csv"])
def test_utf8_byte_order_mark_is_accepted(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    body = "text\nhello\n" if name.endswith(".csv") else '{"text": "hello"}\n'
    p.write_bytes(b"\xef\xbb\xbf" + body.encode())
    spec = inspect(p)
    assert (spec.type, spec.rows, spec.keys) == ("completion", 1, ("text",))


def test_malformed_line_reports_line_number(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n{"text": "c",}\n{"text": "d"}\n')
    e = error(p)
    assert "bad.jsonl:3" in e.message and "malformed JSON" in e.message


def test_non_object_line(tmp_path: Path) -> None:
    p = tmp_path / "n.jsonl"
    p.write_text('{"text": "a"}\n"just a string"\n')
    e = error(p)
    assert "n.jsonl:2" in e.message and "expected a JSON object" in e.message


def test_max_token_rows_must_be_positive(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    assert error(p, max_token_rows=0).exit_code == 2


def test_chat_message_without_content_names_the_row(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]},
    ]
    f = tmp_path / "chat.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError) as exc:
        inspect(f)
    assert "chat.jsonl:2" in exc.value.message
    assert "message 1" in exc.value.message and "'content'" in exc.value.message
