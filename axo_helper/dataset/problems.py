"""What is wrong with a file's bytes, and where: the errors every reader shares.

Owns the binary/UTF-8 sniff run before a text file is parsed, the location of a row in
messages (`file:line`, or `file (schema)` for Parquet), and the malformed-JSON and
not-an-object errors of the JSON readers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

from axo_helper.errors import DatasetError

SNIFF_BYTES = 8192


def loc(file: Path, line: int | None) -> str:
    """Where a row is, for messages: file:line, or the file alone (Parquet schema)."""
    return f"{file}:{line}" if line is not None else f"{file} (schema)"


def sniff(file: Path, fh: BinaryIO) -> None:
    """Refuse binary or non-UTF-8 files before parsing them line by line."""
    head = fh.read(SNIFF_BYTES)
    fh.seek(0)
    if b"\x00" in head:
        raise DatasetError(
            f"{file} looks binary (it contains NUL bytes)",
            hint="datasets must be UTF-8 text (JSONL, JSON, CSV) or Parquet",
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the sniff window is fine.
        if not (e.reason == "unexpected end of data" and len(head) == SNIFF_BYTES):
            raise not_utf8(file, head.count(b"\n", 0, e.start) + 1) from None


def not_utf8(file: Path, line: int) -> DatasetError:
    return DatasetError(
        f"{file}:{line} is not UTF-8 text (or the file is binary)",
        hint="re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8",
    )


def bad_json(file: Path, line: int, raw: bytes | str, e: ValueError) -> DatasetError:
    if isinstance(e, UnicodeDecodeError):
        return not_utf8(file, line)
    if (b"\x00" if isinstance(raw, bytes) else "\x00") in raw:  # type: ignore[operator]
        return DatasetError(
            f"{file}:{line} contains NUL bytes (binary data)",
            hint="datasets must be UTF-8 text (JSONL, JSON, CSV) or Parquet",
        )
    msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
    col = f", column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
    return DatasetError(
        f"{file}:{line}: malformed JSON ({msg}{col})",
        hint="each line of a JSONL file must be one complete JSON object",
    )


def too_deep(file: Path, line: int) -> DatasetError:
    """A row nested deeper than the JSON decoder can follow (RecursionError)."""
    return DatasetError(
        f"{file}:{line}: the JSON nests too deeply to read (thousands of levels)",
        hint="a training example is a flat object of strings or a list of messages; "
        "regenerate this row",
    )


def not_object(file: Path, line: int, obj: Any) -> DatasetError:
    return DatasetError(
        f"{file}:{line}: expected a JSON object (one training example), got {type(obj).__name__}",
        hint='each row is an object such as {"instruction": ..., "output": ...}',
    )
