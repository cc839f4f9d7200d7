"""`inspect(path) -> DataSpec`: one streaming pass over the data files, then the spec.

Owns the order of the steps (find files, read each with its reader, check the result,
count the sample's tokens) and the warnings' order in the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from axo_helper.dataset.entry import final_fields
from axo_helper.dataset.files import SUFFIXES, FileFormat, data_files
from axo_helper.dataset.json_files import scan_json
from axo_helper.dataset.parquet_files import scan_parquet
from axo_helper.dataset.prompts import SEGMENTS, alpaca_format
from axo_helper.dataset.scan import Scan
from axo_helper.dataset.shapes import Shape
from axo_helper.dataset.text_files import scan_csv, scan_txt
from axo_helper.dataset.tokens import TokenCounter, token_counter, token_stats, tokenizer_file
from axo_helper.errors import DatasetError, DatasetUsageError
from axo_helper.specs import DataSpec

_SCANNERS: dict[FileFormat, Callable[[Scan, Path], None]] = {
    "jsonl": scan_json,
    "json": scan_json,
    "csv": scan_csv,
    "parquet": scan_parquet,
    "txt": scan_txt,
}


def inspect(
    path: str | Path,
    *,
    tokenizer: str | Path | None = None,
    max_token_rows: int = 20_000,
    seed: int = 0,
) -> DataSpec:
    """Detect the Axolotl dataset type of `path`, count its rows and measure their length.

    path: a .jsonl/.json/.parquet/.csv/.txt file, or a directory searched recursively for
    them (hidden and `_`-prefixed entries skipped, files in sorted order).
    tokenizer: a directory holding tokenizer.json, or a tokenizer.json file; None (or no
    tokenizer.json there) estimates tokens from characters and sets approximate=True.
    max_token_rows: size of the seeded reservoir sample that is tokenized.
    """
    if max_token_rows < 1:
        raise DatasetUsageError(f"max_token_rows must be at least 1, got {max_token_rows}")
    root = Path(path).expanduser()
    files, warnings = data_files(root)
    tok_file = tokenizer_file(tokenizer, warnings) if tokenizer is not None else None
    scan = Scan(max_token_rows, seed)
    shape = _scan_files(scan, root, files, warnings)
    fields = final_fields(shape, scan.input_keys, scan.system)
    warnings += scan.warnings()

    counter = token_counter(tok_file, warnings)
    lengths, longest = _lengths(scan, shape, fields, counter)
    stats = token_stats(lengths, rows=scan.rows, longest=longest)

    # One builder's files remain (see files._one_builder); .json with .jsonl is the json builder.
    kinds = sorted({SUFFIXES[f.suffix.lower()] for f in files})
    file_format: Any = kinds[0] if len(kinds) == 1 else "json"

    return DataSpec(
        path=str(root),
        files=tuple(str(f) for f in files),
        type=shape.type,
        fields=fields,
        rows=scan.rows,
        sampled_rows=len(lengths),
        tokens=stats,
        tokenizer=str(tok_file) if counter.exact else None,
        approximate=not counter.exact,
        keys=tuple(scan.keys),
        file_format=file_format,
        warnings=tuple(warnings),
        roles=tuple(sorted(map(str, scan.roles))) if shape.type == "chat_template" else (),
    )


def _scan_files(scan: Scan, root: Path, files: list[Path], warnings: list[str]) -> Shape:
    """Feed every file to `scan`; the dataset's one format, or why there is none."""
    for file in files:
        before = scan.rows
        try:
            _SCANNERS[SUFFIXES[file.suffix.lower()]](scan, file)
        except OSError as e:  # unreadable: permissions, a vanished file, an I/O error
            raise DatasetError(
                f"cannot read {file}: {e.strerror or e}", hint="check the file's permissions"
            ) from None
        if scan.rows == before:
            if len(files) == 1:
                raise DatasetError(
                    f"{file} holds no rows", hint="point --data at a file with training examples"
                )
            warnings.append(f"{file} holds no rows")
    if scan.rows == 0:
        raise DatasetError(
            f"{root} holds no rows in {len(files)} data files",
            hint="point --data at a file with training examples",
        )
    if scan.shape is None:  # every row was an empty conversation
        raise DatasetError(
            f"every conversation in {root} is empty",
            hint="each row needs a non-empty list of messages",
        )
    return scan.shape


def _lengths(
    scan: Scan, shape: Shape, fields: dict[str, Any], counter: TokenCounter
) -> tuple[list[int], int]:
    """Token counts of the sampled rows, and of the longest row (0 if none was kept)."""
    segments = SEGMENTS[shape.type]
    fmt = alpaca_format(fields) if shape.type == "alpaca" else None
    lengths = counter([segments(payload, fmt) for payload in scan.reservoir.items])
    longest = 0
    if scan.longest is not None:
        longest_shape, longest_row = scan.longest
        longest = counter([segments(longest_shape.extract(longest_row), fmt)])[0]
    return lengths, longest
