"""Hostile or damaged files: deep JSON, absurd numbers, non-text values in text fields,
a truncated adapter. Each is a message with a hint, never an "internal error"."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from dataset_rows import ALPACA, error, write_jsonl
from hostile_inputs import TINY_LLAMA as TINY
from model_fixtures import write

from axo_helper.errors import AxoHelperError, ModelError
from axo_helper.model import inspect

CLI = Callable[..., Result]
DEEP = "[" * 100_000 + "]" * 100_000


def model_error(folder: Path) -> ModelError:
    with pytest.raises(ModelError) as info:
        inspect(str(folder))
    assert info.value.hint, info.value.message
    return info.value


def assert_message(res: Result, says: str) -> None:
    assert res.exit_code == 1, res.output
    assert says in res.stderr and "  hint: " in res.stderr, res.stderr
    assert "internal error" not in res.output and "Traceback" not in res.output


# --------------------------------------------------------------------------- config.json


def test_a_100k_deep_config_json_is_a_message(cli: CLI, tmp_path: Path) -> None:
    write(tmp_path / "m", "config.json", '{"a": ' + DEEP + ", " + json.dumps(TINY)[1:])
    assert "nests too deeply" in model_error(tmp_path / "m").message
    data = write_jsonl(tmp_path / "qa.jsonl", [ALPACA])
    res = cli("plan", "--gpu", "t4", "--model", str(tmp_path / "m"), "--data", str(data))
    assert_message(res, "nests too deeply")


@pytest.mark.parametrize("value", [1e308, 2**40, float("inf")], ids=["1e308", "2^40", "inf"])
def test_an_absurd_hidden_size_is_refused(cli: CLI, tmp_path: Path, value: float) -> None:
    write(tmp_path / "m", "config.json", json.dumps({**TINY, "hidden_size": value}))
    err = model_error(tmp_path / "m")
    assert "hidden_size must be a positive integer up to 2,147,483,647" in err.message
    assert len(err.message) < 200  # 1e308 as an int is 309 digits: not quoted whole
    data = write_jsonl(tmp_path / "qa.jsonl", [ALPACA])
    res = cli("plan", "--gpu", "t4", "--model", str(tmp_path / "m"), "--data", str(data))
    assert_message(res, "hidden_size must be a positive integer")


@pytest.mark.parametrize(
    ("text", "holds"),
    [("[1, 2]", "a list"), ("null", "null"), ("42", "a number"), ('"llama"', "a string")],
)
def test_a_config_json_that_is_not_an_object_has_a_hint(
    tmp_path: Path, text: str, holds: str
) -> None:
    write(tmp_path / "m", "config.json", text)
    assert f"is not a JSON object (it holds {holds})" in model_error(tmp_path / "m").message


def test_a_utf16_config_json_says_so(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(TINY), encoding="utf-16")
    err = model_error(tmp_path / "m")
    assert "is not UTF-8 text" in err.message and "iconv" in (err.hint or "")


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"hidden_size": 250}, "not divisible by num_attention_heads"),
        ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads"),
    ],
)
def test_heads_that_do_not_divide_have_a_hint(
    tmp_path: Path, fields: dict[str, int], says: str
) -> None:
    write(tmp_path / "m", "config.json", json.dumps({**TINY, **fields}))
    assert says in model_error(tmp_path / "m").message


def test_more_experts_per_token_than_experts_is_refused(tmp_path: Path) -> None:
    moe = {
        **TINY,
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "num_key_value_heads": 2,
        "num_local_experts": 4,
        "num_experts_per_tok": 8,
    }
    write(tmp_path / "m", "config.json", json.dumps(moe))
    err = model_error(tmp_path / "m")
    assert "num_experts_per_tok 8 is more than the 4 experts" in err.message
    write(tmp_path / "ok", "config.json", json.dumps({**moe, "num_experts_per_tok": 2}))
    assert inspect(str(tmp_path / "ok")).experts_per_token == 2


# --------------------------------------------------------------------------- dataset rows


def test_a_100k_deep_data_row_is_a_message(cli: CLI, tmp_path: Path) -> None:
    row = json.dumps(ALPACA)[:-1] + ', "extra": ' + DEEP + "}"
    lines = tmp_path / "deep.jsonl"
    lines.write_text(json.dumps(ALPACA) + "\n" + row + "\n", encoding="utf-8")
    assert "deep.jsonl:2: the JSON nests too deeply" in error(lines).message
    array = tmp_path / "deep.json"
    array.write_text("[\n" + json.dumps(ALPACA) + ",\n" + row + "\n]\n", encoding="utf-8")
    assert "deep.json:3: the JSON nests too deeply" in error(array).message
    write(tmp_path / "m", "config.json", json.dumps(TINY))
    res = cli("plan", "--gpu", "t4", "--model", str(tmp_path / "m"), "--data", str(lines))
    assert_message(res, "nests too deeply")


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({**ALPACA, "instruction": None}, "'instruction' must be a string, got null"),
        ({**ALPACA, "output": 12345}, "'output' must be a string, got the number 12345"),
        ({**ALPACA, "output": ["a", "b"]}, "'output' must be a string, got a list"),
        ({**ALPACA, "input": 7}, "'input' must be a string, got the number 7"),
        ({"question": "q", "answer": True}, "'answer' must be a string, got true/false"),
        ({"text": {"a": 1}}, "'text' must be a string, got an object"),
        (
            {"segments": [{"text": "ok", "label": False}, {"text": 3, "label": True}]},
            "segment 1: 'text' must be a string, got the number 3",
        ),
    ],
    ids=["null", "number", "list", "input", "bool", "object", "segment"],
)
def test_a_non_text_value_in_a_text_field_names_the_row(
    tmp_path: Path, row: dict[str, Any], says: str
) -> None:
    good = {k: ("x" if k != "segments" else [{"text": "x", "label": True}]) for k in row}
    data = write_jsonl(tmp_path / "d.jsonl", [good, row])
    err = error(data)
    assert f"d.jsonl:2: {says}" in err.message and err.hint


def test_a_null_input_is_still_accepted(tmp_path: Path) -> None:
    from axo_helper.dataset import inspect as inspect_data

    data = write_jsonl(tmp_path / "d.jsonl", [ALPACA, {**ALPACA, "input": None}])
    assert inspect_data(data).rows == 2


def test_parquet_text_columns_must_be_strings(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ints = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": [1, 2]}), ints)
    assert "column 'output' is int64, not a string column" in error(ints).message
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"instruction": ["a", None, None], "output": ["x", "y", "z"]}), nulls)
    assert "column 'instruction' has 2 null values" in error(nulls).message
    ok = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"instruction": ["a"], "input": [None], "output": ["x"]}), ok)
    from axo_helper.dataset import inspect as inspect_data

    assert inspect_data(ok).rows == 1


# --------------------------------------------------------------------------- safetensors


def safetensors_bytes(values: int = 4) -> bytes:
    """A valid safetensors file of one float32 tensor, written without the package."""
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [values], "data_offsets": [0, 4 * values]}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * (4 * values)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda b: b[:-3], "truncated or corrupt"),
        (lambda b: b[:5], "header length is impossible"),
        (lambda b: b"copied over by a text file", "header length is impossible"),
        (lambda b: b[:8] + b"x" + b[9:], "header is not valid JSON"),
        (lambda b: b + b"\0" * 10, "truncated or corrupt"),
    ],
    ids=["truncated", "cut-in-header", "not-safetensors", "bad-json", "too-long"],
)
def test_a_damaged_adapter_is_refused_before_the_merge(
    tmp_path: Path, damage: Callable[[bytes], bytes], says: str
) -> None:
    from axo_helper.export import merge
    from axo_helper.export.source import safetensors_problem

    weights = tmp_path / "adapter_model.safetensors"
    weights.write_bytes(safetensors_bytes())
    assert safetensors_problem(weights) is None
    weights.write_bytes(damage(safetensors_bytes()))
    assert says in (safetensors_problem(weights) or "")
    with pytest.raises(AxoHelperError, match=r"adapter_model\.safetensors is damaged") as info:
        merge.merge_lora(tmp_path / "base", tmp_path, tmp_path / "out", qlora=False, cfg={})
    assert info.value.hint and says in info.value.message


@pytest.mark.slow
def test_export_of_a_truncated_adapter_is_a_message(
    cli: Callable[..., Result], tmp_path: Path, tiny_model: Path
) -> None:
    from fake_runs import make_run

    run = make_run(tmp_path, tiny_model)
    weights = run / "output" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    res = cli("export", str(run), "--variant", "merged")
    assert res.exit_code == 1, res.output
    assert "adapter_model.safetensors is damaged" in res.stderr
    assert "internal error" not in res.output and "Traceback" not in res.output
    assert not (run / "merged").exists()
