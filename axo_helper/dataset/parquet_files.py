"""Reading .parquet files with pyarrow, imported only when a Parquet file is read.

Rows are counted from the file's metadata; only the row groups that hold a sampled row are
decoded, and only the columns the format reads. Chat data is read whole for its roles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axo_helper.dataset.scan import MAX_ROLES, Scan
from axo_helper.dataset.shapes import CHAT_SHAPES, MESSAGE_STYLES, ChatKeys, Shape
from axo_helper.errors import DatasetError

_BATCH_ROWS = 8192


def scan_parquet(scan: Scan, file: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{file}: reading Parquet needs pyarrow",
            hint='install it with: pip install "axo-helper[parquet]"',
        ) from None
    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError with varied messages
        raise DatasetError(
            f"{file} is not a readable Parquet file ({e})",
            hint="check the file, or export the data as JSONL",
        ) from None
    keys = tuple(pf.schema_arrow.names)
    got = scan.cache.get(keys) or scan.classify(keys, file, None)
    shape = _chat_shape(file, pf, got.field) if isinstance(got, ChatKeys) else got
    scan.agree(shape, file, None)
    _check_text_columns(file, pf, shape)
    meta = pf.metadata
    start = scan.rows
    for rg in range(meta.num_row_groups):
        n = meta.row_group(rg).num_rows
        # Chat data is read whole for its roles; otherwise only row groups with a sample.
        if shape.type != "chat_template" and scan.reservoir.next >= start + n:
            start += n
            continue
        try:
            _read_row_group(scan, pf, rg, shape, start)
        except pa.ArrowException as e:  # a corrupt or truncated row group
            raise DatasetError(
                f"{file}: cannot read row group {rg} ({e})",
                hint="check the file, or export the data again",
            ) from None
        start += n
    scan.rows = start


def _read_row_group(scan: Scan, pf: Any, rg: int, shape: Shape, offset: int) -> None:
    """Sample the rows of row group `rg` (its first row is row `offset`) and note roles."""
    res = scan.reservoir
    cols = list(shape.columns)
    for batch in pf.iter_batches(batch_size=_BATCH_ROWS, row_groups=[rg], columns=cols):
        if shape.type == "chat_template" and len(scan.roles) < MAX_ROLES:
            scan.roles.update(_roles(batch.column(0), shape.core[2]))
        end = offset + batch.num_rows
        while res.next < end:
            row = batch.slice(res.next - offset, 1).to_pylist()[0]
            res.add(res.next, shape.extract(row))
        offset = end


def _check_text_columns(file: Path, pf: Any, shape: Shape) -> None:
    """Text columns have a string type, and required ones no nulls (from the metadata)."""
    import pyarrow as pa

    schema = pf.schema_arrow
    for key in (*shape.texts, *shape.optional_texts):
        t = schema.field(key).type
        optional_null = key in shape.optional_texts and pa.types.is_null(t)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or optional_null):
            raise DatasetError(
                f"{file}: column '{key}' is {t}, not a string column",
                hint="Axolotl formats and tokenizes this column as text; cast it to string "
                "before writing the file (e.g. df[col].astype(str))",
            )
    meta = pf.metadata
    for key in shape.texts:
        index = schema.get_field_index(key)
        nulls = 0
        for rg in range(meta.num_row_groups):
            stats = meta.row_group(rg).column(index).statistics
            nulls += stats.null_count if stats is not None and stats.has_null_count else 0
        if nulls:
            raise DatasetError(
                f"{file}: column '{key}' has {nulls:,} null values",
                hint="Axolotl formats and tokenizes this column as text; fill the nulls "
                '(e.g. with "") or drop those rows',
            )


def _chat_shape(file: Path, pf: Any, field: str) -> Shape:
    import pyarrow as pa

    t = pf.schema_arrow.field(field).type
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type):
        names = {t.value_type.field(i).name for i in range(t.value_type.num_fields)}
        for role, content, _ in MESSAGE_STYLES:
            if role in names and content in names:
                return CHAT_SHAPES[(field, role)]
        raise DatasetError(
            f"{file}: messages in column '{field}' have keys {sorted(names)}",
            hint="messages need role/content (OpenAI) or from/value (ShareGPT) keys",
        )
    raise DatasetError(
        f"{file}: column '{field}' is {t}, not a list of messages",
        hint="each message is a struct such as {role: string, content: string}",
    )


def _roles(column: Any, role: str) -> list[str]:
    import pyarrow.compute as pc

    values = pc.list_flatten(column).field(role)
    return [r for r in pc.unique(values).to_pylist() if r is not None]
