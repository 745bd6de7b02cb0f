"""Writing prediction log rows: COPY on PostgreSQL, one multi-row INSERT elsewhere or for a few rows.

A request's rows are written by ``write_logs`` in the request. A batch job's rows go to
a ``LogSpool`` first (COPY text in a temporary file, so memory does not grow with the
file) and are written together when the job publishes its output, in its final
transaction: all of them or none.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from django.db import connection

from .models import PredictionLog


class LogRow(NamedTuple):
    """One predicted instance, in the order of ``_COLUMNS``."""

    deployment_id: int
    version_id: int
    request_id: uuid.UUID
    created_at: datetime
    features: Any
    prediction: Any
    probability: float | None
    latency_ms: float
    instance_index: int
    batch_size: int
    source: str


_COLUMNS = ("deployment", "model_version_id_logged", "request_id", "created_at", "features", "prediction",
            "probability", "latency_ms", "instance_index", "batch_size", "source")

COPY_FROM_ROWS = 20
COPY_PIECE_ROWS = 100
INSERT_CHUNK_ROWS = 1000
_SPOOL_READ_BYTES = 1024 * 1024

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_UNESCAPE = re.compile(r"\\(.)")
_COPY_UNESCAPED = {"t": "\t", "n": "\n", "r": "\r"}


def _log_json(value) -> str:
    """How a log row's JSON columns are written: numpy scalars as numbers, NaN as null."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _copy_json(value) -> str:
    """A JSON value in COPY's text format: orjson never writes raw control characters, so
    only its backslashes need doubling."""
    return _log_json(value).replace("\\", "\\\\")


def copy_text(rows: Sequence[LogRow]) -> bytes:
    """Log rows as COPY text lines.

    Formatting the lines here is several times faster than psycopg's per-value
    ``write_row`` adaptation, which dominated the cost of logging a 1,000-instance request.
    """
    lines = []
    for r in rows:
        probability = "\\N" if r.probability is None else repr(float(r.probability))
        lines.append(
            f"{int(r.deployment_id)}\t{int(r.version_id)}\t{r.request_id}\t{r.created_at.isoformat()}\t"
            f"{_copy_json(r.features)}\t{_copy_json(r.prediction)}\t{probability}\t{float(r.latency_ms)!r}\t"
            f"{int(r.instance_index)}\t{int(r.batch_size)}\t{str(r.source).translate(_COPY_ESCAPES)}\n"
        )
    return "".join(lines).encode()


def row_from_copy_line(line: str) -> LogRow:
    """The inverse of ``copy_text`` for one line (for databases without COPY)."""
    raw = line.rstrip("\n").split("\t")
    deployment, version, request_id, created, features, prediction, probability, latency, index, size, source = (
        _COPY_UNESCAPE.sub(lambda m: _COPY_UNESCAPED.get(m.group(1), m.group(1)), field) for field in raw
    )
    return LogRow(int(deployment), int(version), uuid.UUID(request_id), datetime.fromisoformat(created),
                  orjson.loads(features), orjson.loads(prediction), None if raw[6] == "\\N" else float(probability),
                  float(latency), int(index), int(size), source)


def _table_and_columns() -> tuple[str, str, list]:
    fields = [PredictionLog._meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    return connection.ops.quote_name(PredictionLog._meta.db_table), columns, fields


def _copy(pieces: Iterator[bytes]) -> None:
    table, columns, _ = _table_and_columns()
    # psycopg's own errors from COPY become Django's, so a lost connection counts as transient
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for piece in pieces:  # the server parses a piece while we produce the next
                copy.write(piece)


def _insert(rows: Sequence[LogRow]) -> None:
    """One multi-row INSERT per chunk, with values prepared by the fields themselves."""
    table, columns, fields = _table_and_columns()
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    json_columns = {i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"}

    def prep(i, f, value):
        if i in json_columns:  # as COPY writes them: numpy as numbers, NaN as null, None as JSON null
            return f.get_db_prep_value(orjson.loads(_log_json(value)), connection)
        return f.get_db_prep_save(value, connection)

    for start in range(0, len(rows), INSERT_CHUNK_ROWS):
        chunk = rows[start:start + INSERT_CHUNK_ROWS]
        params = [prep(i, f, value) for row in chunk for i, (f, value) in enumerate(zip(fields, row, strict=True))]
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(chunk))}", params)


def write_logs(rows: Sequence[LogRow]) -> None:
    """Write a request's instances in one statement: COPY on PostgreSQL for batches, else one INSERT."""
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        _copy(copy_text(rows[start:start + COPY_PIECE_ROWS]) for start in range(0, len(rows), COPY_PIECE_ROWS))
        return
    _insert(rows)


class LogSpool:
    """A batch job's log rows, kept as COPY text in a temporary file until ``write``.

    Use as a context manager: the file is removed on exit, written or not.
    """

    def __init__(self):
        fd, self.path = tempfile.mkstemp(suffix=".predictions.copy")
        self._file = os.fdopen(fd, "w+b")
        self.rows = 0

    def __enter__(self) -> LogSpool:
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()
        os.unlink(self.path)

    def add(self, rows: Sequence[LogRow]) -> None:
        self._file.write(copy_text(rows))
        self.rows += len(rows)

    def write(self) -> None:
        """Write every spooled row (inside the caller's transaction)."""
        self._file.flush()
        self._file.seek(0)
        if connection.vendor == "postgresql":
            _copy(iter(lambda: self._file.read(_SPOOL_READ_BYTES), b""))
            return
        chunk: list[LogRow] = []
        for line in self._file:
            chunk.append(row_from_copy_line(line.decode()))
            if len(chunk) == INSERT_CHUNK_ROWS:
                _insert(chunk)
                chunk = []
        _insert(chunk)
