"""Reading .jsonl and .json files: JSON Lines, or one top-level array streamed in chunks.

Axolotl's json builder reads either layout from either suffix, so both readers serve both.
A .json array is never loaded whole: it is decoded element by element from a window of
`_JSON_CHUNK` characters, so memory stays flat however large the file is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from axo_helper.dataset.problems import (
    SNIFF_BYTES,
    bad_json,
    not_object,
    not_utf8,
    sniff,
    too_deep,
)
from axo_helper.dataset.scan import Scan
from axo_helper.errors import DatasetError

_JSON_CHUNK = 1 << 20  # characters read at a time from a .json array
MAX_RECORD = 64 << 20  # one array element (or CSV field) may not exceed this (characters)
_WS = re.compile(r"[ \t\n\r]*")


def scan_json(scan: Scan, file: Path) -> None:
    """A .json or .jsonl file: a top-level array, or JSON Lines (Axolotl's json builder
    reads either from either suffix)."""
    with file.open("rb") as fh:
        sniff(file, fh)
        head = fh.read(SNIFF_BYTES).lstrip(b"\xef\xbb\xbf").lstrip()
        fh.seek(0)
        if head[:1] == b"[":
            _scan_json_array(scan, file)
            return
        try:
            _scan_lines(scan, file, fh)
        except DatasetError as e:
            # A pretty-printed object fails on its first line; say what the file should be.
            if file.suffix.lower() == ".json" and scan.rows == 0 and "malformed JSON" in e.message:
                raise DatasetError(
                    f"{file}: neither a JSON array of records nor JSON Lines ({e.message})",
                    hint="write one object per line (JSONL) or a top-level [ ... ] array; "
                    "a single object holding a list must be unwrapped",
                ) from None
            raise


def _scan_lines(scan: Scan, file: Path, fh: BinaryIO) -> None:
    # decode(bytes.decode()) skips json.loads' encoding detection: ~30% faster a line.
    decode = json.JSONDecoder().decode
    row = scan.row
    if fh.read(3) != b"\xef\xbb\xbf":  # a UTF-8 byte order mark
        fh.seek(0)
    for lineno, raw in enumerate(fh, 1):
        if raw.isspace():
            continue
        try:
            obj = decode(raw.decode("utf-8"))
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            raise bad_json(file, lineno, raw, e) from None
        except RecursionError:
            raise too_deep(file, lineno) from None
        if type(obj) is not dict:
            raise not_object(file, lineno, obj)
        row(obj, len(raw), file, lineno)


def _scan_json_array(scan: Scan, file: Path) -> None:
    """Stream the elements of a top-level JSON array without loading the whole file."""
    with file.open("r", encoding="utf-8-sig", newline="") as fh:
        r = _Window(fh, file)
        r.more()
        if not r.skip_ws():
            return
        if r.buf[r.pos] != "[":
            raise DatasetError(
                f"{file}:{r.here()}: expected a JSON array", hint="write [ {...}, ... ]"
            )
        r.pos += 1
        first = True
        while True:
            if not r.skip_ws():
                raise DatasetError(
                    f"{file}:{r.here()}: the JSON array is not closed with ']'",
                    hint="the file may be truncated",
                )
            if r.buf[r.pos] == "]":
                return
            if not first:
                if r.buf[r.pos] != ",":
                    raise DatasetError(
                        f"{file}:{r.here()}: malformed JSON (expected ',' or ']')",
                        hint="array elements are separated by commas",
                    )
                r.pos += 1
                if not r.skip_ws():
                    continue  # reports the unclosed array
            first = False
            start_line = r.here()
            obj, end = r.record(start_line)
            if type(obj) is not dict:
                raise not_object(file, start_line, obj)
            scan.row(obj, end - r.pos, file, start_line)
            r.pos = end
            r.drop_parsed()


class _Window:
    """The unparsed tail of a .json file read so far, with the line number of `pos`."""

    def __init__(self, fh: TextIO, file: Path):
        self.fh = fh
        self.file = file
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # line number at `counted`
        self.counted = 0
        self._decode = json.JSONDecoder().raw_decode

    def more(self) -> bool:
        """Append the next chunk, dropping what is parsed; False at the end of the file."""
        if self.eof:
            return False
        try:
            chunk = self.fh.read(_JSON_CHUNK)
        except UnicodeDecodeError:
            raise not_utf8(self.file, self.line + self.buf.count("\n", self.counted)) from None
        if not chunk:
            self.eof = True
            return False
        self.line += self.buf.count("\n", self.counted, self.pos)  # lines in the part dropped
        self.buf = self.buf[self.pos :] + chunk
        self.counted = 0
        self.pos = 0
        return True

    def skip_ws(self) -> bool:
        """Move past whitespace; False at the end of the file."""
        while True:
            m = _WS.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return True
            if not self.more():
                return False

    def here(self) -> int:
        """The line number of `pos`."""
        self.line += self.buf.count("\n", self.counted, self.pos)
        self.counted = self.pos
        return self.line

    def drop_parsed(self) -> None:
        """Forget the parsed part of a large window, keeping line numbers right."""
        if self.pos > _JSON_CHUNK:
            self.here()
            self.buf = self.buf[self.pos :]
            self.counted = 0
            self.pos = 0

    def record(self, start_line: int) -> tuple[Any, int]:
        """Decode the element at `pos`, reading on while it may be cut: (value, its end)."""
        while True:
            try:
                obj, end = self._decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    return obj, end
                # A record ends with '}', so one that reaches the end of the buffer may be
                # a number or literal cut short: read on and decode it again.
            except json.JSONDecodeError as e:
                # Only an error at the end of the buffer (or an unterminated string) can
                # be a record cut by the chunking; anything earlier is really malformed.
                cut = e.msg.startswith("Unterminated string") or e.pos >= len(self.buf) - 8
                if len(self.buf) - self.pos > MAX_RECORD:
                    raise DatasetError(
                        f"{self.file}:{start_line}: malformed JSON or a record over "
                        f"{MAX_RECORD >> 20} MiB ({e.msg})",
                        hint="fix the record, or write the data as JSONL",
                    ) from None
                if not cut or not self.more():
                    bad_line = start_line + self.buf.count("\n", self.pos, e.pos)
                    raise bad_json(self.file, bad_line, self.buf[self.pos : e.pos], e) from None
                continue
            except RecursionError:
                raise too_deep(self.file, start_line) from None
            if not self.more():
                return obj, end
