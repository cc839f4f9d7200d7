"""Reading .csv and .txt files: a header row of column names, or one completion row a line.

A CSV column holds one string, so only the flat formats (alpaca, completion) fit in one;
conversations and segments are refused with a pointer to JSONL or Parquet.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from axo_helper.dataset.json_files import MAX_RECORD
from axo_helper.dataset.problems import loc, not_utf8, sniff
from axo_helper.dataset.scan import Scan
from axo_helper.dataset.shapes import ChatKeys, Shape, classify_keys, unknown_format
from axo_helper.errors import DatasetError


def scan_txt(scan: Scan, file: Path) -> None:
    """Axolotl reads a .txt file one row per line, as completion rows with a `text` column."""
    with file.open("rb") as fh:
        sniff(file, fh)
        for lineno, raw in enumerate(fh, 1):
            if raw.isspace():
                continue
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                raise not_utf8(file, lineno) from None
            scan.row({"text": text}, len(raw), file, lineno)


def scan_csv(scan: Scan, file: Path) -> None:
    with file.open("rb") as bfh:
        sniff(file, bfh)
    old_limit = csv.field_size_limit()
    # The default 128 KiB field limit is too small for long documents; restored below.
    csv.field_size_limit(max(old_limit, MAX_RECORD))
    try:
        with file.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            try:
                _scan_rows(scan, file, reader)
            except csv.Error as e:
                raise DatasetError(
                    f"{file}:{reader.line_num}: malformed CSV ({e})",
                    hint="check the quoting around that line",
                ) from None
            except UnicodeDecodeError:
                raise not_utf8(file, reader.line_num + 1) from None
    finally:
        csv.field_size_limit(old_limit)


def _scan_rows(scan: Scan, file: Path, reader: Any) -> None:
    """The header decides the format of every row; short rows are padded with ''."""
    header = next(reader, None)
    if not header:
        return
    keys = tuple(header)
    shape = classify_keys(keys)
    if shape is None:
        raise unknown_format(loc(file, 1), keys)
    if not isinstance(shape, Shape) or shape.type == "input_output":
        raise DatasetError(
            f"{file}: a CSV column cannot hold "
            f"{'conversations' if isinstance(shape, ChatKeys) else 'segments'}",
            hint="write conversations and segments as JSONL or Parquet",
        )
    scan.classify(keys, file, 1)
    scan.agree(shape, file, 1)
    width = len(keys)
    for values in reader:
        if not values:
            continue  # a blank line
        if len(values) > width:
            raise DatasetError(
                f"{file}:{reader.line_num}: {len(values)} fields, the header has {width}",
                hint="quote fields that contain commas or newlines",
            )
        if len(values) < width:  # short rows: missing cells are empty
            values += [""] * (width - len(values))
        row = dict(zip(keys, values, strict=True))
        scan.row(row, sum(map(len, values)), file, reader.line_num)
