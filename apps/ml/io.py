"""Reading uploaded data files safely.

Uploads come from people, not pipelines, so every way a file can be wrong must
end in a :class:`DataFileError` whose message says what is wrong and where,
never in a parser traceback. The checks are ordered cheapest first: the format
is sniffed from a few bytes, the column count from the header line (or the
Parquet footer), and only then is the whole file decoded and parsed (with
pyarrow, which is fast and strict about ragged rows where pandas' C engine
silently pads short ones). :func:`inspect_table` runs only the cheap checks, so
a web request can refuse a bad file at once and leave the full read to a worker.

A small file can decode to a huge table (a 2 MB zstd Parquet file holds 100M
rows of zeros), so the shape is capped before anything is decoded: rows and
rows x columns from a Parquet footer, with the Parquet data read row group by
row group and counted again; rows of a CSV counted while it streams.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from apps.ml import parquet
from apps.ml.errors import DataFileError
from apps.ml.tables import (
    MAX_CELLS_DEFAULT,
    MAX_COLUMNS_DEFAULT,
    MAX_ROWS_DEFAULT,
    Limits,
    check_column_names,
    to_pandas,
)

__all__ = ["MAX_CELLS_DEFAULT", "MAX_COLUMNS_DEFAULT", "MAX_ROWS_DEFAULT", "Limits", "TableFacts",
           "file_sha256", "inspect_table", "read_table", "sniff_format"]

_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024
_HEADER_MAX_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024
_BIG_BLOCK = 64 * 1024 * 1024
_DELIMITERS = (",", ";", "\t", "|")
# pyarrow's defaults plus the two pandas also treats as missing, so CSV values
# come out the way pandas users expect.
_NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip
_KNOWN_BINARY = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one too; export it as CSV)"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel/Office document (export it as CSV)"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, streamed in 1 MiB chunks so large uploads never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(path: str, filename: str) -> str:
    """Return ``"csv"`` or ``"parquet"`` judged by the file's bytes.

    The extension is only a hint (people rename files); the bytes decide. A
    file that claims to be Parquet by name but lacks the magic is rejected,
    because reading it as CSV would produce a confusing one-column table.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise DataFileError(f"{filename} is empty (0 bytes).", field="file", code="empty_file")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        tail = b""
        if size >= 8:
            fh.seek(size - 4)
            tail = fh.read(4)

    if head.startswith(_PARQUET_MAGIC):
        if tail != _PARQUET_MAGIC or size < 12:
            raise DataFileError(
                f"{filename} starts like a Parquet file but is truncated or corrupt "
                "(the footer magic 'PAR1' is missing).",
                field="file",
                code="corrupt_parquet",
            )
        parquet.open_parquet(path, filename)  # reads the footer: raises if it is unreadable
        return "parquet"

    if filename.lower().endswith((".parquet", ".pq")):
        raise DataFileError(
            f"{filename} has a Parquet extension but is not a Parquet file (no 'PAR1' magic bytes).",
            field="file",
            code="not_parquet",
        )
    for magic, what in _KNOWN_BINARY:
        if head.startswith(magic):
            raise DataFileError(
                f"{filename} is {what}, not a CSV or Parquet file.", field="file", code="not_tabular"
            )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataFileError(
            f"{filename} is UTF-16 text; re-save it as UTF-8 CSV.", field="file", code="bad_encoding"
        )
    if _looks_binary(head):
        raise DataFileError(
            f"{filename} looks like binary data, not a CSV (text) or Parquet file.",
            field="file",
            code="not_tabular",
        )
    _check_utf8_bytes(head, filename, final=len(head) == size)
    return "csv"


@dataclass(frozen=True)
class TableFacts:
    """What the cheap checks learn: the format, the column names and, for Parquet, the rows."""

    format: str
    columns: list[str]
    rows: int | None


def inspect_table(
    path: str,
    filename: str,
    *,
    max_columns: int = MAX_COLUMNS_DEFAULT,
    max_rows: int = MAX_ROWS_DEFAULT,
    max_cells: int = MAX_CELLS_DEFAULT,
) -> TableFacts:
    """The checks that cost no full read: format, header or footer, shape from the footer.

    A file that passes may still fail :func:`read_table` (a ragged row deep in a
    CSV, a bad byte past the first 64 KB, a CSV with too many rows).
    """
    limits = Limits(columns=max_columns, rows=max_rows, cells=max_cells)
    fmt = sniff_format(path, filename)
    if fmt == "parquet":
        pfile = parquet.open_parquet(path, filename)
        names = parquet.check_footer(pfile, filename, limits)
        return TableFacts(fmt, names, pfile.metadata.num_rows)
    header, _ = _read_header(path, filename, require_rows=True)
    check_column_names(header, filename, max_columns)
    return TableFacts(fmt, header, None)


def read_table(
    path: str,
    fmt: str,
    *,
    max_columns: int = MAX_COLUMNS_DEFAULT,
    max_rows: int = MAX_ROWS_DEFAULT,
    max_cells: int = MAX_CELLS_DEFAULT,
    filename: str | None = None,
) -> pd.DataFrame:
    """Read a sniffed file into a DataFrame, or raise a DataFileError that names the problem.

    ``filename`` is the name the user uploaded, used in messages instead of the
    stored file's name. A table of more than ``max_rows`` rows or ``max_cells``
    values (rows x columns) is refused before it is held in memory.
    """
    name = filename or os.path.basename(path)
    limits = Limits(columns=max_columns, rows=max_rows, cells=max_cells)
    if fmt == "csv":
        return _read_csv(path, name, limits)
    if fmt == "parquet":
        return parquet.read_parquet(path, name, limits)
    raise DataFileError(f"Unsupported file format {fmt!r}.", field="file", code="bad_format")


# --------------------------------------------------------------------------- CSV


def _read_csv(path: str, name: str, limits: Limits) -> pd.DataFrame:
    if os.path.getsize(path) == 0:
        raise DataFileError(f"{name} is empty (0 bytes).", field="file", code="empty_file")
    header, delimiter = _read_header(path, name)
    check_column_names(header, name, limits.columns)
    # whole-file pass, only once the cheap checks passed; each line ends in a newline,
    # so their count bounds the records (quoted newlines make it an overestimate)
    newlines = _check_utf8_file(path, name)
    try:
        limits.check_shape(name, newlines, len(header))
    except DataFileError:
        _count_csv_records(path, name, delimiter, header, limits)

    table = _parse_csv(path, name, delimiter, len(header))
    if table.num_rows == 0:
        raise DataFileError(f"{name} has a header but no data rows.", field="file", code="no_rows")
    limits.check_shape(name, table.num_rows, table.num_columns)
    return to_pandas(table, name)


def _count_csv_records(path: str, name: str, delimiter: str, header: list[str], limits: Limits) -> None:
    """Count records exactly, block by block, and stop at the first block over the limits.

    Every column is read as text, so a type that changes deep in the file cannot
    fail the count; each block is dropped once counted.
    """
    read = pa_csv.ReadOptions(block_size=_CHUNK)
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    convert = pa_csv.ConvertOptions(column_types={column: pa.string() for column in header})
    rows = 0
    try:
        with pa_csv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert) as reader:
            for batch in reader:
                rows += batch.num_rows
                limits.check_shape(name, rows, len(header), at_least=True)
    except pa.ArrowInvalid:
        return  # a malformed file: the full parse names the problem


def _parse_csv(path: str, name: str, delimiter: str, width: int) -> pa.Table:
    """Parse with pyarrow, retrying with slower settings only when the fast ones fail.

    Quoted newlines defeat pyarrow's parallel chunking, and a cell larger than a
    block needs bigger blocks, so both are enabled only on a second attempt.
    """
    convert = pa_csv.ConvertOptions(null_values=_NULL_VALUES, strings_can_be_null=True)
    newlines, block_size = False, _CHUNK
    while True:
        parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=newlines)
        read = pa_csv.ReadOptions(block_size=block_size)
        try:
            return pa_csv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "straddling" in message and block_size == _CHUNK:
                block_size = _BIG_BLOCK
            elif "Expected" in message and "columns" in message:
                if newlines:
                    raise _uneven_row_error(path, name, delimiter, width, message) from None
                newlines = True
            else:
                raise DataFileError(
                    f"{name} could not be parsed as CSV: {message}", field="file", code="bad_csv"
                ) from None


def _read_header(path: str, name: str, *, require_rows: bool = False) -> tuple[list[str], str]:
    """Parse only the header record, reading at most 8 MiB, and pick the delimiter.

    With ``require_rows``, a file that ends right after its header is refused here.
    """
    with open(path, "rb") as fh:
        raw = fh.read(_HEADER_MAX_BYTES)
        at_eof = not fh.read(1)
    text = _check_utf8_bytes(raw, name, final=at_eof)
    # pyarrow skips blank lines, so the header is the first non-blank line.
    stripped = text.lstrip("\r\n")
    newline = stripped.find("\n")
    if newline < 0 and not at_eof:
        raise DataFileError(
            f"{name}: the header line is longer than {_HEADER_MAX_BYTES // (1024 * 1024)} MiB.",
            field="file",
            code="header_too_long",
        )
    first_line = stripped if newline < 0 else stripped[:newline]
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    # Comma unless the header has none; then the most frequent of ; tab | (ties -> comma).
    delimiter = "," if counts[","] else max(_DELIMITERS, key=lambda d: counts[d])
    buffer = io.StringIO(stripped)
    try:
        header = next(csv.reader(buffer, delimiter=delimiter), None)
    except csv.Error as exc:
        raise DataFileError(f"{name}: the header line is malformed ({exc}).", field="file") from None
    if not header:
        raise DataFileError(f"{name} has no header row.", field="file", code="no_header")
    if require_rows and at_eof and not buffer.read().strip():
        raise DataFileError(f"{name} has a header but no data rows.", field="file", code="no_rows")
    return header, delimiter


def _uneven_row_error(path: str, name: str, delimiter: str, expected: int, detail: str) -> DataFileError:
    """Locate the first ragged record by line number (pyarrow does not report it when multithreaded)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        seen_header = False
        try:
            for row in reader:
                if not row:
                    continue
                if not seen_header:
                    seen_header = True
                elif len(row) != expected:
                    return DataFileError(
                        f"{name}: rows have uneven length; line {reader.line_num} has {len(row)} "
                        f"fields but the header has {expected}.",
                        field="file",
                        code="uneven_rows",
                    )
        except csv.Error:
            pass
    return DataFileError(f"{name}: rows have uneven length ({detail}).", field="file", code="uneven_rows")


# --------------------------------------------------------------------------- encoding


def _looks_binary(head: bytes) -> bool:
    """NUL bytes or more than 1% control characters mean this is not a text file."""
    if b"\x00" in head:
        return True
    control = sum(head.count(bytes([b])) for b in (*range(0, 9), 11, 12, *range(14, 32), 127))
    return control > max(1, len(head) // 100)


def _utf8_error(name: str, offset: int) -> DataFileError:
    return DataFileError(
        f"{name} is not UTF-8 text: the first invalid byte is at offset {offset}. "
        "Re-save the file as UTF-8 (e.g. 'CSV UTF-8' in Excel).",
        field="file",
        code="bad_encoding",
    )


def _check_utf8_bytes(data: bytes, name: str, *, final: bool, offset_base: int = 0) -> str:
    """Decode a prefix; an incomplete multibyte sequence at its very end is not an error."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data[bom:], final=final)
    except UnicodeDecodeError as exc:
        raise _utf8_error(name, offset_base + bom + exc.start) from None


def _check_utf8_file(path: str, name: str) -> int:
    """Stream the whole file through a UTF-8 decoder to find the first bad byte's offset.

    Returns the number of lines (newlines, plus one for a last line without one).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = 0
    newlines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        first = True
        while chunk := fh.read(_CHUNK):
            if first and chunk.startswith(codecs.BOM_UTF8):
                chunk, consumed = chunk[3:], 3
            first = False
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _utf8_error(name, consumed - pending + exc.start) from None
            consumed += len(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:] or last
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise _utf8_error(name, consumed - pending + exc.start) from None
    return newlines + (last != b"\n")


