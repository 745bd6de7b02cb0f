"""Reading Parquet files row group by row group, within limits judged from the footer first."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apps.ml.errors import DataFileError
from apps.ml.tables import Limits, check_column_names, to_pandas, unsupported, unsupported_type_error


def open_parquet(path: str, name: str, read_dictionary: list[str] | None = None) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, read_dictionary=read_dictionary)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(
            f"{name} is a corrupt Parquet file: {exc}", field="file", code="corrupt_parquet"
        ) from None


def check_footer(pfile: pq.ParquetFile, name: str, limits: Limits) -> list[str]:
    """Names, types and shape from the footer alone: nothing is decompressed."""
    schema = pfile.schema_arrow
    names = list(schema.names)
    check_column_names(names, name, limits.columns)
    for field in schema:
        if unsupported(field.type):
            raise unsupported_type_error(name, field)
    meta = pfile.metadata
    if meta.num_rows == 0:
        raise DataFileError(f"{name} has columns but no data rows.", field="file", code="no_rows")
    limits.check_shape(name, meta.num_rows, len(names))
    limits.check_bytes(name, sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))
    return names


def read_parquet(path: str, name: str, limits: Limits) -> pd.DataFrame:
    pfile = open_parquet(path, name)
    check_footer(pfile, name, limits)
    texts = {f.name: f.type for f in pfile.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
    if texts:  # text arrives dictionary-encoded, so its decoded size is known before it exists
        pfile = open_parquet(path, name, read_dictionary=list(texts))
    width = len(pfile.schema_arrow.names)
    groups, rows, decoded = [], 0, 0
    try:
        for index in range(pfile.metadata.num_row_groups):
            group = pfile.read_row_group(index)
            rows += group.num_rows  # the footer's counts are the writer's word; count again
            limits.check_shape(name, rows, width)
            decoded += _decoded_bytes(group)
            limits.check_bytes(name, decoded)
            groups.append(_undictionary(group, texts))
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(
            f"{name} is a corrupt Parquet file: {exc}", field="file", code="corrupt_parquet"
        ) from None
    df = to_pandas(pa.concat_tables(groups), name)
    if not isinstance(df.index, pd.RangeIndex):
        # A pandas-written index comes back as the index; keep named ones as columns.
        df = df.reset_index(drop=all(n is None for n in df.index.names))
    return df


def _decoded_bytes(table: pa.Table) -> int:
    """Bytes the table takes once every dictionary column is expanded."""
    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary)
                total += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 4 * len(chunk)
            else:
                total += chunk.nbytes
    return total


def _undictionary(table: pa.Table, texts: dict[str, pa.DataType]) -> pa.Table:
    for name, original in texts.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(index).cast(original))
    return table
