"""dataset readers: JSON arrays and JSON Lines, Parquet, CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_rows import (
    ALPACA,
    ALPACA_IN,
    SHAREGPT,
    error,
    varied_rows,
    write_jsonl,
)

from axo_helper.dataset import (
    inspect,
    json_files,
)


def test_json_array_streamed_matches_jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small odd chunk size cuts records, strings and numbers at every possible place.
    monkeypatch.setattr(json_files, "_JSON_CHUNK", 997)
    rows = [{**r, "n": i * 1234567} for i, r in enumerate(varied_rows(6000))]
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert arr.stat().st_size > 1000 * json_files._JSON_CHUNK
    a = inspect(arr, max_token_rows=500)
    b = inspect(write_jsonl(tmp_path / "a.jsonl", rows), max_token_rows=500)
    assert a.rows == b.rows == 6000
    assert a.file_format == "json"
    assert a.tokens == b.tokens  # same rows, same seed: same sample


def test_json_lines_in_a_json_file(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.json", [ALPACA, ALPACA_IN])
    spec = inspect(p)
    assert (spec.rows, spec.file_format, spec.type) == (2, "json", "alpaca")


def test_json_array_malformed_element_reports_its_line(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(
        '[\n  {"text": "a"},\n  {"text": "b"},\n  {"text": "c" "d"}\n]\n', encoding="utf-8"
    )
    e = error(p)
    assert "a.json:4" in e.message and "malformed JSON" in e.message


def test_json_array_truncated(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('[{"text": "a"}, {"text": "b"', encoding="utf-8")
    e = error(p)
    assert "a.json:1" in e.message


def test_json_single_object_is_explained(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"data": [ALPACA]}, indent=2), encoding="utf-8")
    e = error(p)
    assert "neither a JSON array" in e.message and e.hint and "unwrapped" in e.hint


def test_parquet_alpaca_and_chat(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = varied_rows(5000)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet", row_group_size=700)
    spec = inspect(tmp_path / "a.parquet", max_token_rows=300)
    assert (spec.type, spec.rows, spec.sampled_rows) == ("alpaca", 5000, 300)
    assert spec.file_format == "parquet"
    # The same rows as JSONL give the same sample and statistics.
    ref = inspect(write_jsonl(tmp_path / "a.jsonl", rows), max_token_rows=300)
    assert spec.tokens.p50 == ref.tokens.p50 and spec.tokens.mean == ref.tokens.mean

    pq.write_table(pa.Table.from_pylist([SHAREGPT, SHAREGPT]), tmp_path / "c.parquet")
    chat = inspect(tmp_path / "c.parquet")
    assert chat.type == "chat_template"
    assert chat.fields["message_property_mappings"] == {"role": "from", "content": "value"}
    assert chat.roles == ("gpt", "human")


def test_parquet_garbage_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    p = tmp_path / "x.parquet"
    p.write_bytes(b"not parquet at all")
    assert "not a readable Parquet file" in error(p).message


def test_csv_alpaca_with_quoted_newlines(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text(
        'instruction,input,output\n"Write\na poem",,"Roses\nare red"\nSay hi,,hi\n',
        encoding="utf-8",
    )
    spec = inspect(p)
    assert (spec.type, spec.rows, spec.file_format, spec.fields) == ("alpaca", 2, "csv", {})


def test_csv_cannot_hold_conversations(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text('messages\n"[{""role"": ""user""}]"\n', encoding="utf-8")
    assert "cannot hold conversations" in error(p).message


def test_csv_extra_fields_report_the_line(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("text\nok\nbad,extra\n", encoding="utf-8")
    e = error(p)
    assert "t.csv:3" in e.message
