"""Reading uploaded files: every bad input must end in a DataFileError that names the problem."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.api import types as ptypes

from apps.ml import io as mlio
from apps.ml.errors import DataFileError
from apps.ml.io import MAX_COLUMNS_DEFAULT, file_sha256, inspect_table, read_table, sniff_format


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def write_parquet(tmp_path: Path, name: str, table: pa.Table) -> str:
    path = tmp_path / name
    pq.write_table(table, path)
    return str(path)


def rejected(call, *args, **kwargs) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        call(*args, **kwargs)
    assert info.value.field == "file"
    return info.value


# --------------------------------------------------------------------------- sniff_format


def test_it_sniffs_csv_from_text_bytes(tmp_path):
    path = write(tmp_path, "data.txt", b"a,b\n1,2\n")
    assert sniff_format(path, "data.txt") == "csv"


def test_it_sniffs_parquet_from_magic_bytes_whatever_the_extension(tmp_path):
    path = write_parquet(tmp_path, "data.csv", pa.table({"a": [1, 2]}))
    assert sniff_format(path, "data.csv") == "parquet"


def test_it_rejects_an_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", b"")
    err = rejected(sniff_format, path, "empty.csv")
    assert "empty" in err.message and "0 bytes" in err.message


def test_it_rejects_a_png_image(tmp_path):
    path = write(tmp_path, "photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(64))
    err = rejected(sniff_format, path, "photo.csv")
    assert "PNG image" in err.message and "not a CSV or Parquet" in err.message


def test_it_rejects_a_zip_archive_such_as_an_excel_workbook(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("sheet.xml", "<x/>")
    path = write(tmp_path, "book.xlsx", buffer.getvalue())
    err = rejected(sniff_format, path, "book.xlsx")
    assert "ZIP archive" in err.message and "export it as CSV" in err.message


def test_it_rejects_binary_data_containing_nul_bytes(tmp_path):
    path = write(tmp_path, "blob.csv", b"a,b\n1,\x00\x00\x002\n")
    err = rejected(sniff_format, path, "blob.csv")
    assert "binary" in err.message


def test_it_rejects_random_binary_garbage(tmp_path):
    garbage = np.random.default_rng(0).integers(1, 256, 4096, dtype=np.uint8).tobytes()
    path = write(tmp_path, "garbage.csv", garbage)
    err = rejected(sniff_format, path, "garbage.csv")
    assert "binary" in err.message


def test_it_rejects_utf16_text_asking_for_utf8(tmp_path):
    path = write(tmp_path, "u16.csv", "a,b\n1,2\n".encode("utf-16"))
    err = rejected(sniff_format, path, "u16.csv")
    assert "UTF-16" in err.message and "UTF-8" in err.message


def test_it_rejects_a_parquet_file_with_an_unreadable_footer(tmp_path):
    path = write(tmp_path, "bad.parquet", b"PAR1" + b"\x07" * 200 + b"PAR1")
    err = rejected(sniff_format, path, "bad.parquet")
    assert "corrupt Parquet" in err.message


def test_it_rejects_a_truncated_parquet_file(tmp_path):
    good = Path(write_parquet(tmp_path, "good.parquet", pa.table({"a": list(range(100))})))
    path = write(tmp_path, "cut.parquet", good.read_bytes()[:-40])
    err = rejected(sniff_format, path, "cut.parquet")
    assert "Parquet" in err.message and ("truncated" in err.message or "corrupt" in err.message)


def test_it_rejects_a_text_file_named_parquet(tmp_path):
    path = write(tmp_path, "data.parquet", b"a,b\n1,2\n")
    err = rejected(sniff_format, path, "data.parquet")
    assert "not a Parquet file" in err.message


def test_sniff_rejects_non_utf8_text_at_the_start(tmp_path):
    path = write(tmp_path, "latin1.csv", "name\ncafé\n".encode("latin-1"))
    err = rejected(sniff_format, path, "latin1.csv")
    assert "not UTF-8" in err.message and "offset 8" in err.message


# --------------------------------------------------------------------------- read_table: CSV


def test_it_reads_csv_keeping_the_types_pandas_infers(tmp_path):
    path = write(tmp_path, "t.csv", b"n,x,s,b\n1,1.5,foo,true\n2,,bar,false\n3,2.5,,true\n")
    df = read_table(path, "csv")
    assert list(df.columns) == ["n", "x", "s", "b"]
    assert df["n"].dtype == np.int64
    assert df["x"].dtype == np.float64 and np.isnan(df["x"][1])
    assert ptypes.is_string_dtype(df["s"].dtype) or df["s"].dtype == object
    assert df["s"].tolist()[:2] == ["foo", "bar"] and pd.isna(df["s"][2])
    assert df["b"].dtype == bool


def test_it_reads_iso_dates_as_datetimes(tmp_path):
    path = write(tmp_path, "d.csv", b"day,v\n2024-01-01,1\n2024-02-29,2\n")
    df = read_table(path, "csv")
    assert ptypes.is_datetime64_any_dtype(df["day"].dtype)
    assert df["day"].iloc[1] == pd.Timestamp("2024-02-29")


def test_it_accepts_a_utf8_byte_order_mark(tmp_path):
    path = write(tmp_path, "bom.csv", "\ufeffname,n\nZoë,1\n".encode())
    df = read_table(path, "csv")
    assert list(df.columns) == ["name", "n"]
    assert df["name"][0] == "Zoë"


def test_it_reads_quoted_values_spanning_lines(tmp_path):
    path = write(tmp_path, "q.csv", b'id,note\n1,"first line\nsecond, line"\n2,plain\n')
    df = read_table(path, "csv")
    assert df["note"].tolist() == ["first line\nsecond, line", "plain"]


def test_it_detects_a_semicolon_delimiter(tmp_path):
    path = write(tmp_path, "semi.csv", b"a;b\n1;x\n2;y\n")
    df = read_table(path, "csv")
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1, 2]


def test_it_reads_a_cell_larger_than_one_parse_block(tmp_path):
    path = write(tmp_path, "big.csv", b"a,b\n1," + b"x" * 3_000_000 + b"\n2,y\n")
    df = read_table(path, "csv")
    assert df.shape == (2, 2) and len(df["b"][0]) == 3_000_000


def test_it_rejects_a_file_of_blank_lines(tmp_path):
    path = write(tmp_path, "blank.csv", b"\n\n\n")
    err = rejected(read_table, path, "csv")
    assert "no header row" in err.message


def test_it_reports_the_line_of_a_ragged_row_after_a_multiline_cell(tmp_path):
    path = write(tmp_path, "mixed.csv", b'a,b\n1,"x\ny"\n2,3,4\n')
    err = rejected(read_table, path, "csv")
    assert "uneven length" in err.message and "line 4" in err.message


def test_it_rejects_rows_of_uneven_length(tmp_path):
    path = write(tmp_path, "ragged.csv", b"a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n")
    err = rejected(read_table, path, "csv")
    assert "uneven length" in err.message
    assert "line 4" in err.message and "4 fields" in err.message and "header has 3" in err.message


def test_it_rejects_a_row_that_is_too_short(tmp_path):
    path = write(tmp_path, "short.csv", b"a,b,c\n1,2,3\n4,5\n")
    err = rejected(read_table, path, "csv")
    assert "uneven length" in err.message and "line 3" in err.message


def test_it_rejects_non_utf8_text_with_the_offset_of_the_first_bad_byte(tmp_path):
    path = write(tmp_path, "latin1.csv", "city,n\nMünchen,1\n".encode("latin-1"))
    err = rejected(read_table, path, "csv")
    assert "not UTF-8" in err.message
    assert "offset 8" in err.message  # b"city,n\nM" is 8 bytes
    assert "Re-save" in err.message and "UTF-8" in err.message


def test_it_finds_a_bad_byte_beyond_the_first_chunks(tmp_path):
    body = "a,b\n" + "1,é\n" * 1_000_000  # ~5 MiB, multibyte chars straddle chunk edges
    data = bytearray(body.encode())
    bad_at = 3 * 1024 * 1024 + 1
    while data[bad_at] in b",\n":
        bad_at += 1
    data[bad_at] = 0xFF
    path = write(tmp_path, "late.csv", bytes(data))
    assert sniff_format(path, "late.csv") == "csv"  # the sniffed prefix is clean
    err = rejected(read_table, path, "csv")
    assert f"offset {bad_at}" in err.message


def test_it_rejects_duplicate_column_names_and_names_them(tmp_path):
    path = write(tmp_path, "dup.csv", b"id,price,id,qty,price\n1,2,3,4,5\n")
    err = rejected(read_table, path, "csv")
    assert "duplicate column names" in err.message
    assert "'id'" in err.message and "'price'" in err.message and "'qty'" not in err.message


def test_it_rejects_an_empty_column_name_giving_its_position(tmp_path):
    path = write(tmp_path, "blank.csv", b"a,,c\n1,2,3\n")
    err = rejected(read_table, path, "csv")
    assert "empty column name" in err.message and "position 2" in err.message


def test_it_rejects_a_header_without_data_rows(tmp_path):
    path = write(tmp_path, "header.csv", b"a,b,c\n")
    err = rejected(read_table, path, "csv")
    assert "has a header but no data rows" in err.message


def test_it_rejects_an_empty_csv(tmp_path):
    path = write(tmp_path, "empty.csv", b"")
    err = rejected(read_table, path, "csv")
    assert "empty" in err.message


def test_it_rejects_too_many_columns_before_parsing_the_body(tmp_path, monkeypatch):
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join("1" for _ in range(10_000))
    path = write(tmp_path, "wide.csv", f"{header}\n{row}\n{row}\n".encode())

    def must_not_run(*args, **kwargs):
        raise AssertionError("the whole file was read before the column count was checked")

    monkeypatch.setattr(mlio.pa_csv, "read_csv", must_not_run)
    monkeypatch.setattr(mlio, "_check_utf8_file", must_not_run)
    err = rejected(read_table, path, "csv")
    assert "10000 columns" in err.message and f"limit is {MAX_COLUMNS_DEFAULT}" in err.message


def test_it_honours_a_lower_column_limit(tmp_path):
    path = write(tmp_path, "five.csv", b"a,b,c,d,e\n1,2,3,4,5\n")
    err = rejected(read_table, path, "csv", max_columns=4)
    assert "5 columns" in err.message and "limit is 4" in err.message
    assert read_table(path, "csv", max_columns=5).shape == (1, 5)


# --------------------------------------------------------------------------- read_table: Parquet


def test_it_reads_parquet(tmp_path):
    df_in = pd.DataFrame({"x": [1.0, 2.5, None], "s": ["a", "b", None], "n": [1, 2, 3]})
    path = tmp_path / "in.parquet"
    df_in.to_parquet(path)
    df = read_table(str(path), "parquet")
    assert list(df.columns) == ["x", "s", "n"]
    assert isinstance(df.index, pd.RangeIndex)
    assert df["x"].tolist()[:2] == [1.0, 2.5] and df["n"].tolist() == [1, 2, 3]


def test_it_rejects_a_corrupt_parquet_file_when_reading(tmp_path):
    path = write(tmp_path, "bad.parquet", b"PAR1" + b"\x01" * 64 + b"PAR1")
    err = rejected(read_table, path, "parquet")
    assert "corrupt Parquet" in err.message


def test_it_rejects_a_parquet_file_without_rows(tmp_path):
    path = write_parquet(tmp_path, "none.parquet", pa.table({"a": pa.array([], pa.int64())}))
    err = rejected(read_table, path, "parquet")
    assert "no data rows" in err.message


def test_it_rejects_a_parquet_file_with_too_many_columns(tmp_path):
    table = pa.table({f"c{i}": [i] for i in range(30)})
    path = write_parquet(tmp_path, "wide.parquet", table)
    err = rejected(read_table, path, "parquet", max_columns=20)
    assert "30 columns" in err.message and "limit is 20" in err.message


def test_it_rejects_a_parquet_file_with_duplicate_column_names(tmp_path):
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    path = write_parquet(tmp_path, "dup.parquet", table)
    err = rejected(read_table, path, "parquet")
    assert "duplicate column names" in err.message and "'a'" in err.message


def test_messages_name_the_uploaded_file_when_given(tmp_path):
    path = write(tmp_path, "stored-7f3a.bin", b"a,b\n")
    err = rejected(read_table, path, "csv", filename="sales.csv")
    assert err.message.startswith("sales.csv has a header")


def test_it_rejects_an_unknown_format_name(tmp_path):
    path = write(tmp_path, "a.csv", b"a\n1\n")
    err = rejected(read_table, path, "xlsx")
    assert "Unsupported file format" in err.message


# --------------------------------------------------------------------------- shape limits


def zeros_parquet(tmp_path: Path, name: str, *, rows: int, row_groups: int = 1, columns: int = 4) -> str:
    path = tmp_path / name
    block = pa.table({f"c{i}": np.zeros(rows // row_groups, dtype=np.int64) for i in range(columns)})
    with pq.ParquetWriter(path, block.schema, compression="zstd") as writer:
        for _ in range(row_groups):
            writer.write_table(block)
    return str(path)


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Parquet data was decoded")

    for method in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, method, refuse)


def test_a_parquet_file_is_judged_by_its_footer_before_any_row_is_decoded(tmp_path, no_decoding):
    path = zeros_parquet(tmp_path, "bomb.parquet", rows=6_000_000, row_groups=6)
    err = rejected(read_table, path, "parquet")
    assert err.code == "too_many_rows" and "6,000,000 rows; the limit is 5,000,000" in err.message
    err = rejected(inspect_table, path, "bomb.parquet")
    assert err.code == "too_many_rows"


def test_rows_times_columns_is_capped_from_the_footer(tmp_path, no_decoding):
    path = zeros_parquet(tmp_path, "wide.parquet", rows=1000, columns=5)
    err = rejected(read_table, path, "parquet", max_cells=4000)
    assert err.code == "too_many_cells" and "1,000 rows x 5 columns = 5,000 values" in err.message


def test_a_nested_parquet_column_is_refused_from_the_footer(tmp_path, no_decoding):
    path = write_parquet(tmp_path, "nested.parquet", pa.table({"a": [[1, 2], [3]], "b": [1, 2]}))
    err = rejected(inspect_table, path, "nested.parquet")
    assert err.code == "unsupported_type" and "'a'" in err.message


def test_a_parquet_file_is_read_row_group_by_row_group(tmp_path, monkeypatch):
    path = zeros_parquet(tmp_path, "groups.parquet", rows=3000, row_groups=3)
    seen = []
    original = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read", lambda *a, **k: pytest.fail("read the whole file at once"))
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: seen.append(i) or original(self, i, *a, **k))
    df = read_table(path, "parquet")
    assert seen == [0, 1, 2] and df.shape == (3000, 4)


def test_text_repeated_from_a_tiny_dictionary_is_refused_before_it_is_expanded(tmp_path):
    # 3.5 KB on disk, 3 GB once every row's copy of the 3 MB string is made
    big = pa.DictionaryArray.from_arrays(pa.array(np.zeros(1000, dtype=np.int32)), pa.array(["a" * 3_000_000]))
    path = tmp_path / "amplified.parquet"
    pq.write_table(pa.table({"s": big, "n": np.arange(1000)}), path, compression="zstd",
                   dictionary_pagesize_limit=64 << 20)
    assert path.stat().st_size < 100_000
    err = rejected(read_table, str(path), "parquet")
    assert err.code == "too_large_decoded" and "3,000,0" in err.message


def test_text_read_through_its_dictionary_comes_back_as_plain_strings(tmp_path):
    df_in = pd.DataFrame({"plan": ["basic", "pro", None, "pro"] * 50, "id": [f"c{i}" for i in range(200)]})
    path = tmp_path / "text.parquet"
    df_in.to_parquet(path)
    pd.testing.assert_frame_equal(read_table(str(path), "parquet"), pq.read_table(path).to_pandas())


def test_a_csv_with_more_rows_than_the_limit_is_refused_while_it_streams(tmp_path, monkeypatch):
    path = write(tmp_path, "long.csv", b"a,b\n" + b"1,2\n" * 500)
    monkeypatch.setattr(mlio.pa_csv, "read_csv", lambda *a, **k: pytest.fail("parsed a table over the limit"))
    err = rejected(read_table, path, "csv", max_rows=499)
    assert err.code == "too_many_rows" and "at least 500 rows; the limit is 499" in err.message


def test_a_csv_over_the_value_limit_is_refused(tmp_path):
    path = write(tmp_path, "cells.csv", b"a,b,c\n" + b"1,2,3\n" * 100)
    err = rejected(read_table, path, "csv", max_cells=299)
    assert err.code == "too_many_cells" and "x 3 columns" in err.message


def test_quoted_newlines_do_not_count_as_rows(tmp_path):
    path = write(tmp_path, "notes.csv", b'id,note\n' + b'1,"one\ntwo\nthree"\n' * 10)
    df = read_table(path, "csv", max_rows=10)
    assert len(df) == 10 and df["note"].iloc[0] == "one\ntwo\nthree"


def test_inspect_table_runs_only_the_cheap_checks(tmp_path, monkeypatch):
    monkeypatch.setattr(mlio.pa_csv, "read_csv", lambda *a, **k: pytest.fail("parsed the body"))
    ragged = write(tmp_path, "ragged.csv", b"a,b,c\n1,2,3\n4,5\n")
    facts = inspect_table(ragged, "ragged.csv")
    assert facts.format == "csv" and facts.columns == ["a", "b", "c"] and facts.rows is None
    parquet = write_parquet(tmp_path, "p.parquet", pa.table({"x": [1, 2, 3]}))
    assert inspect_table(parquet, "p.parquet").rows == 3
    header_only = write(tmp_path, "head.csv", b"a,b\n\n")
    assert rejected(inspect_table, header_only, "head.csv").code == "no_rows"
    dupes = write(tmp_path, "dupes.csv", b"a,a\n1,2\n")
    assert rejected(inspect_table, dupes, "dupes.csv").code == "duplicate_columns"


# --------------------------------------------------------------------------- file_sha256


def test_file_sha256_matches_hashlib_over_several_chunks(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, 3 * 1024 * 1024 + 17, dtype=np.uint8).tobytes()
    path = write(tmp_path, "blob.bin", data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
