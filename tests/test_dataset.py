"""dataset.inspect: format detection, exact row counts, token statistics, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from axo_helper import dataset
from axo_helper.dataset import (
    ALPACA_NO_INPUT_PREAMBLE,
    ALPACA_PREAMBLE,
    CHAT_TOKENS_PER_MESSAGE,
    SPECIAL_TOKENS_PER_ROW,
    approx_tokens,
    axolotl_dataset_entry,
    inspect,
)
from axo_helper.errors import DatasetError

ALPACA = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
ALPACA_IN = {"instruction": "Translate.", "input": "Bonjour", "output": "Hello"}
OPENAI = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
    ]
}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "What is 2+2?"},
        {"from": "gpt", "value": "4"},
    ]
}
IO = {"segments": [{"text": "Q: hi\n", "label": False}, {"text": "A: hello", "label": True}]}


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def varied_rows(n: int) -> list[dict[str, str]]:
    # Output lengths vary with i so percentiles and samples differ between seeds.
    return [
        {"instruction": f"Question {i}?", "input": "", "output": "word " * (1 + (i * 7919) % 97)}
        for i in range(n)
    ]


def error(path: Path | str, **kw: Any) -> DatasetError:
    with pytest.raises(DatasetError) as exc:
        inspect(path, **kw)
    return exc.value


# ------------------------------------------------------------------ formats and types
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


# ------------------------------------------------------------------ file formats
def test_json_array_streamed_matches_jsonl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A small odd chunk size cuts records, strings and numbers at every possible place.
    monkeypatch.setattr(dataset, "_JSON_CHUNK", 997)
    rows = [{**r, "n": i * 1234567} for i, r in enumerate(varied_rows(6000))]
    arr = tmp_path / "a.json"
    arr.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    assert arr.stat().st_size > 1000 * dataset._JSON_CHUNK
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


def test_directory_recursive_skips_hidden_and_counts_all(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "part1.jsonl", [ALPACA] * 3)
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "part2.jsonl", [ALPACA_IN] * 2)
    write_jsonl(tmp_path / ".hidden.jsonl", [OPENAI])  # would be a mixed format if read
    (tmp_path / "__cache__").mkdir()
    write_jsonl(tmp_path / "__cache__" / "x.jsonl", [OPENAI])
    (tmp_path / "README.md").write_text("about the data")
    spec = inspect(tmp_path)
    assert spec.rows == 5
    assert [Path(f).name for f in spec.files] == ["part1.jsonl", "part2.jsonl"]
    assert any("README.md" in w for w in spec.warnings)


def test_directory_of_mixed_file_types_reads_one_type_like_hugging_face(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    (tmp_path / "b.csv").write_text("text\ny\n", encoding="utf-8")  # a draw: .jsonl wins
    write_jsonl(tmp_path / "c.json", [{"text": "z"}] * 2)  # the same json builder
    spec = inspect(tmp_path)
    assert (spec.rows, spec.file_format) == (3, "json")
    assert any("b.csv" in w and "one file type" in w for w in spec.warnings)


def test_directory_counts_only_the_train_split_like_hugging_face(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [ALPACA] * 4)
    write_jsonl(tmp_path / "qa_test.jsonl", [ALPACA] * 2)
    write_jsonl(tmp_path / "extra.jsonl", [ALPACA] * 3)  # no split name: not loaded
    write_jsonl(tmp_path / "interval.jsonl", [ALPACA])  # "val" inside a word is no keyword
    spec = inspect(tmp_path)
    assert spec.rows == 4
    assert [Path(f).name for f in spec.files] == ["train.jsonl"]
    (warning,) = [w for w in spec.warnings if w.startswith("not counted")]
    assert "qa_test.jsonl (test)" in warning and "extra.jsonl (no split name)" in warning


def test_directory_split_folders(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("validation", 2)):
        (tmp_path / split).mkdir()
        write_jsonl(tmp_path / split / "part-0.jsonl", [ALPACA] * n)
    spec = inspect(tmp_path)
    assert spec.rows == 3
    assert any("validation/part-0.jsonl (validation)" in w for w in spec.warnings)


def test_directory_without_a_train_split_is_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "test.jsonl", [ALPACA])
    write_jsonl(tmp_path / "dev.jsonl", [ALPACA])
    e = error(tmp_path)
    assert "no 'train' split" in e.message and "test.jsonl (test)" in e.message


# ------------------------------------------------------------------ errors
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


# ------------------------------------------------------------------ counting and sampling
def test_rows_exact_beyond_the_sample_and_sampling_is_deterministic(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "big.jsonl", varied_rows(12_345))
    a = inspect(p, max_token_rows=1000, seed=7)
    b = inspect(p, max_token_rows=1000, seed=7)
    c = inspect(p, max_token_rows=1000, seed=8)
    full = inspect(p, max_token_rows=20_000)
    assert a.rows == c.rows == full.rows == 12_345
    assert a.sampled_rows == 1000 and full.sampled_rows == 12_345
    assert a.tokens == b.tokens
    assert a.tokens.mean != c.tokens.mean  # another seed draws another sample
    # The sample estimates the full data: mean within 5%, total scaled to all rows.
    assert a.tokens.mean == pytest.approx(full.tokens.mean, rel=0.05)
    assert a.tokens.total == round(a.tokens.mean * 12_345)
    assert full.tokens.total == pytest.approx(full.tokens.mean * 12_345)


def test_reservoir_is_uniform() -> None:
    res = dataset._Reservoir(1000, seed=3)
    for i in range(100_000):
        if i == res.next:
            res.add(i, i)
    assert len(res.items) == 1000 and len(set(res.items)) == 1000
    # Uniform over 0..99,999: mean 50,000, standard error about 900.
    assert sum(res.items) / 1000 == pytest.approx(50_000, abs=4000)
    assert sum(1 for i in res.items if i >= 50_000) == pytest.approx(500, abs=60)


def test_max_includes_the_longest_row_even_when_not_sampled(tmp_path: Path) -> None:
    rows: list[dict[str, str]] = [{"text": "short"}] * 5000
    rows = [*rows[:2500], {"text": "x" * 36_000}, *rows[2500:]]
    spec = inspect(write_jsonl(tmp_path / "t.jsonl", rows), max_token_rows=10)
    assert spec.sampled_rows == 10
    assert spec.tokens.max == 10_000 + SPECIAL_TOKENS_PER_ROW["completion"]
    assert spec.tokens.p99 < 100


def test_percentiles_are_nearest_rank(tmp_path: Path) -> None:
    # Completion rows of 36*k ASCII characters are k*10 tokens + 2 by the approximation.
    rows = [{"text": "a" * (36 * k)} for k in range(1, 101)]
    t = inspect(write_jsonl(tmp_path / "t.jsonl", rows)).tokens
    assert (t.p50, t.p95, t.p99, t.max) == (502, 952, 992, 1002)
    assert t.total == sum(10 * k + 2 for k in range(1, 101))
    assert t.mean == pytest.approx(t.total / 100)


def test_approximation() -> None:
    assert approx_tokens("a" * 36) == pytest.approx(10)
    assert approx_tokens("日本語") == pytest.approx(3.0)  # CJK: one token a character
    assert approx_tokens("éé") == pytest.approx(1.0)  # other non-ASCII: half a token


def test_alpaca_estimate_includes_axolotl_prompt(tmp_path: Path) -> None:
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "", "output": ""}]))
    template = ALPACA_NO_INPUT_PREAMBLE + "\n\n### Instruction:\n\n\n### Response:\n"
    expected = math.ceil(len(template) / 3.6) + 2
    assert spec.tokens.max == expected


# ------------------------------------------------------------------ real tokenizer
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Below is an instruction that describes a task.",
    "### Instruction:\n### Input:\n### Response:\n",
    "Brindlemoor is a small town in a high valley between two grey mountains.",
    "What is two plus two? Four. Hello there, how are you today?",
]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE trained offline on a few sentences, with a BOS post-processor."""
    tk = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tk.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    # A truncation setting in tokenizer.json must not shorten the counts.
    tok.enable_truncation(max_length=8)
    d = tmp_path_factory.mktemp("tok")
    tok.save(str(d / "tokenizer.json"))
    return d


def n_tokens(tok_dir: Path, text: str) -> int:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    tok.no_truncation()
    return len(tok.encode(text, add_special_tokens=False).ids)


def test_tokenizer_counts_completion(tmp_path: Path, tiny_tokenizer: Path) -> None:
    texts = [s * (i + 1) for i, s in enumerate(SENTENCES)]
    p = write_jsonl(tmp_path / "t.jsonl", [{"text": t} for t in texts])
    for tok in (tiny_tokenizer, tiny_tokenizer / "tokenizer.json"):
        spec = inspect(p, tokenizer=tok)
        assert spec.approximate is False
        assert spec.tokenizer == str(tiny_tokenizer / "tokenizer.json")
        expected = sorted(n_tokens(tiny_tokenizer, t) + 2 for t in texts)
        assert spec.tokens.total == sum(expected)
        assert spec.tokens.max == expected[-1] and spec.tokens.p50 == expected[2]
        assert expected[-1] > 8  # longer than the tokenizer.json truncation


def test_tokenizer_counts_chat_and_alpaca(tmp_path: Path, tiny_tokenizer: Path) -> None:
    chat = inspect(write_jsonl(tmp_path / "c.jsonl", [OPENAI]), tokenizer=tiny_tokenizer)
    msgs = OPENAI["messages"]
    assert chat.tokens.max == (
        sum(n_tokens(tiny_tokenizer, m["content"]) for m in msgs)
        + CHAT_TOKENS_PER_MESSAGE * len(msgs)
        + SPECIAL_TOKENS_PER_ROW["chat_template"]
    )
    alp = inspect(write_jsonl(tmp_path / "a.jsonl", [ALPACA_IN]), tokenizer=tiny_tokenizer)
    prompt = (
        ALPACA_PREAMBLE
        + "\n\n### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:\n"
    )
    assert (
        alp.tokens.max == n_tokens(tiny_tokenizer, prompt) + n_tokens(tiny_tokenizer, "Hello") + 2
    )


def test_tokenizer_dir_without_tokenizer_json_falls_back(tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    spec = inspect(write_jsonl(tmp_path / "a.jsonl", [ALPACA]), tokenizer=tmp_path / "tok")
    assert spec.approximate is True and spec.tokenizer is None
    assert any("no tokenizer.json" in w for w in spec.warnings)


def test_missing_tokenizer_path_is_a_usage_error(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    assert error(p, tokenizer=tmp_path / "nope").exit_code == 2


def test_plan_path_imports_no_torch_or_axolotl(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "a.jsonl", [ALPACA])
    code = (
        "import sys; from axo_helper.dataset import inspect; "
        f"inspect({str(p)!r}); "
        "print(sorted(m for m in ('torch', 'transformers', 'axolotl', 'pyarrow', 'tokenizers')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ against Axolotl itself
@pytest.mark.axolotl
def test_entries_and_token_counts_match_axolotl(tmp_path: Path, tiny_tokenizer: Path) -> None:
    """Axolotl accepts the entries, and tokenizes each row to exactly the counted length."""
    pytest.importorskip("axolotl")
    from axolotl.prompt_strategies import load
    from axolotl.prompt_strategies.user_defined import UserDefinedDatasetConfig
    from axolotl.prompt_tokenizers import AlpacaPromptTokenizingStrategy
    from axolotl.prompters import AlpacaPrompter
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.schemas.datasets import SFTDataset
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_file=str(tiny_tokenizer / "tokenizer.json"), bos_token="<s>", eos_token="</s>"
    )
    hf.backend_tokenizer.no_truncation()
    cfg = DictDefault({"train_on_inputs": False, "sequence_len": 100_000})

    def check(name: str, row: dict[str, Any], axolotl_len: Any) -> None:
        spec = inspect(write_jsonl(tmp_path / f"{name}.jsonl", [row]), tokenizer=tiny_tokenizer)
        entry = axolotl_dataset_entry(spec)
        SFTDataset.model_validate(entry)  # Axolotl's own schema for a `datasets:` entry
        assert spec.tokens.max == axolotl_len(spec), name

    def alpaca_len(spec: Any) -> int:
        strat = AlpacaPromptTokenizingStrategy(AlpacaPrompter(None), hf, False, 100_000)
        return len(strat.tokenize_prompt(ALPACA_IN)["input_ids"])

    check("alpaca", ALPACA_IN, alpaca_len)

    qa = {"question": "Why is the sky blue?", "context": "Light scatters.", "answer": "Rayleigh."}

    def user_defined_len(spec: Any) -> int:
        UserDefinedDatasetConfig(**spec.fields)  # every key is one Axolotl knows
        strat = load("user_defined", hf, cfg, spec.fields)
        return len(strat.tokenize_prompt(qa)["input_ids"])

    check("qa", qa, user_defined_len)

    sys_row = {**ALPACA, "system": "You are terse."}

    def system_len(spec: Any) -> int:
        strat = load("user_defined", hf, cfg, spec.fields)
        return len(strat.tokenize_prompt(sys_row)["input_ids"])

    check("system", sys_row, system_len)

    text = {"text": " ".join(SENTENCES)}

    def completion_len(spec: Any) -> int:
        strat = load("completion", hf, cfg, {"field": "text"})
        return len(strat.tokenize_prompt({"text": [text["text"]]})["input_ids"][0])

    check("completion", text, completion_len)

    def io_len(spec: Any) -> int:
        strat = load("input_output", hf, cfg, {})
        return len(strat.tokenize_prompt(IO)["input_ids"])

    check("io", IO, io_len)

    chat = inspect(write_jsonl(tmp_path / "chat.jsonl", [SHAREGPT]))
    SFTDataset.model_validate(axolotl_dataset_entry(chat))


@pytest.mark.axolotl
@pytest.mark.parametrize(
    "layout",
    [
        {"train.jsonl": 4, "qa_test.jsonl": 2, "extra.jsonl": 3, "interval.jsonl": 1},
        {"train/part-0.jsonl": 3, "validation/part-0.jsonl": 2, "notes.jsonl": 5},
        {"a.jsonl": 2, "sub/b.jsonl": 3, ".hidden.jsonl": 7},
        {"a.jsonl": 3, "b.json": 3, "c.csv": 2, "d.csv": 4},
        {"a.csv": 3, "b.parquet": 2, "c.jsonl": 1, "d.parquet": 4},
    ],
)
def test_directory_rows_match_hugging_face_train_split(
    tmp_path: Path, layout: dict[str, int]
) -> None:
    """The rows counted are the rows of the split Axolotl loads: load_dataset(dir)["train"]."""
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "data"
    for name, n in layout.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".csv"):
            (data / name).write_text("instruction,output\n" + "a,b\n" * n, encoding="utf-8")
        elif name.endswith(".parquet"):
            pa = pytest.importorskip("pyarrow")
            pq = pytest.importorskip("pyarrow.parquet")
            pq.write_table(pa.Table.from_pylist([ALPACA] * n), data / name)
        else:
            write_jsonl(data / name, [ALPACA] * n)
    train = datasets.load_dataset(str(data), cache_dir=str(tmp_path / "cache"))["train"]
    assert inspect(data).rows == len(train)


def test_chat_message_without_content_names_the_row(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]},
    ]
    f = tmp_path / "chat.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError) as exc:
        dataset.inspect(f)
    assert "chat.jsonl:2" in exc.value.message
    assert "message 1" in exc.value.message and "'content'" in exc.value.message
