"""dataset.files: which files of a directory are read, like Hugging Face datasets."""

from __future__ import annotations

from pathlib import Path

from dataset_rows import (
    ALPACA,
    ALPACA_IN,
    OPENAI,
    error,
    write_jsonl,
)

from axo_helper.dataset import (
    inspect,
)


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
