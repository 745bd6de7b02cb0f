"""What every table reader checks and converts: the limits on a table's shape, its
column names, and Arrow types turned into plain, profilable pandas ones."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from apps.ml.errors import DataFileError

MAX_COLUMNS_DEFAULT = 2000
MAX_ROWS_DEFAULT = 5_000_000
MAX_CELLS_DEFAULT = 100_000_000
# Decoded Parquet data, beyond rows x columns: one 10 MB string repeated in every row
# compresses to almost nothing.
MAX_DECODED_BYTES_DEFAULT = 2 * 1024**3


@dataclass(frozen=True)
class Limits:
    """How large a table may be once decoded."""

    columns: int = MAX_COLUMNS_DEFAULT
    rows: int = MAX_ROWS_DEFAULT
    cells: int = MAX_CELLS_DEFAULT
    decoded_bytes: int = MAX_DECODED_BYTES_DEFAULT

    def check_shape(self, name: str, rows: int, width: int, *, at_least: bool = False) -> None:
        """Refuse ``rows`` x ``width``; ``at_least`` when counting stopped early."""
        more = "at least " if at_least else ""
        if rows > self.rows:
            raise DataFileError(
                f"{name} has {more}{rows:,} rows; the limit is {self.rows:,}.", field="file", code="too_many_rows"
            )
        if rows * width > self.cells:
            raise DataFileError(
                f"{name} has {more}{rows:,} rows x {width} columns = {rows * width:,} values; "
                f"the limit is {self.cells:,}.",
                field="file",
                code="too_many_cells",
            )

    def check_bytes(self, name: str, decoded: int) -> None:
        if decoded > self.decoded_bytes:
            raise DataFileError(
                f"{name} decodes to {decoded:,} bytes of data; the limit is {self.decoded_bytes:,}.",
                field="file",
                code="too_large_decoded",
            )


def check_column_names(names: list[str], name: str, max_columns: int) -> None:
    """Reject tables whose columns cannot be addressed unambiguously."""
    if len(names) > max_columns:
        raise DataFileError(
            f"{name} has {len(names)} columns; the limit is {max_columns}.",
            field="file",
            code="too_many_columns",
        )
    empty = [i + 1 for i, n in enumerate(names) if not str(n).strip()]
    if empty:
        where = ", ".join(str(i) for i in empty[:10])
        noun = "name at position" if len(empty) == 1 else "names at positions"
        raise DataFileError(
            f"{name} has an empty column {noun} {where} (counting from 1).",
            field="file",
            code="empty_column_name",
        )
    dupes = [n for n, c in Counter(names).items() if c > 1]
    if dupes:
        listed = ", ".join(repr(d) for d in dupes[:10])
        raise DataFileError(
            f"{name} has duplicate column names: {listed}.", field="file", code="duplicate_columns"
        )


def to_pandas(table: pa.Table, name: str) -> pd.DataFrame:
    """Convert Arrow types pandas handles awkwardly into plain, profilable ones.

    Dates become timestamps (not object columns of ``datetime.date``), decimals
    floats, all-null columns float64 (as pandas' own CSV reader does). Nested
    and binary columns cannot be profiled, so they are rejected by name.
    """
    fields = []
    for field in table.schema:
        t = field.type
        if pa.types.is_date(t):
            t = pa.timestamp("s")
        elif pa.types.is_decimal(t) or pa.types.is_null(t):
            t = pa.float64()
        elif unsupported(t):
            raise unsupported_type_error(name, field)
        fields.append(pa.field(field.name, t))
    target = pa.schema(fields, metadata=table.schema.metadata)
    if target != table.schema:
        table = table.cast(target)
    # self_destruct frees each Arrow column as soon as it is converted, so the
    # table and the frame are never both fully in memory.
    return table.to_pandas(split_blocks=True, self_destruct=True)


def unsupported(t: pa.DataType) -> bool:
    return pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def unsupported_type_error(name: str, field: pa.Field) -> DataFileError:
    return DataFileError(
        f"{name}: column {field.name!r} has type {field.type}, which is not supported "
        "(use flat numeric, text, boolean or date columns).",
        field="file",
        code="unsupported_type",
    )
