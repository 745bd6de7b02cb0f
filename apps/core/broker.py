"""A server-less Celery broker: a kombu virtual transport on one SQLite file.

Why not kombu's stock transports: the filesystem transport was seen losing a message
under fast polling (a reader picked up a half-written file), and the SQLAlchemy
transport polls once a second and keeps consumed rows. Here a message is taken with
a single ``DELETE ... RETURNING`` statement, which SQLite runs atomically under its
write lock, so two consumers can never receive the same row and a row is never read
half-written. Polling is tunable with ``broker_transport_options={"polling_interval": s}``.

Unacknowledged messages (``acks_late``) live in the worker's memory, as with every
kombu virtual transport: they are put back on a clean shutdown; after a SIGKILL they
are lost, and the Job reaper (``apps.core.tasks.reap_stale_jobs``) requeues the job
from our own table, which is the source of truth.

Use it with ``CELERY_BROKER_URL=sqlite:///relative/path.sqlite3`` (or four slashes for
an absolute path); ``register()`` installs the ``sqlite`` scheme.
"""

from __future__ import annotations

import json
import os
import sqlite3
from queue import Empty
from threading import Lock

from kombu.transport import TRANSPORT_ALIASES, virtual

SCHEMA = """
CREATE TABLE IF NOT EXISTS kombu_message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kombu_message_queue_id ON kombu_message (queue, id);
"""


def _connect(path: str) -> sqlite3.Connection:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA)
    return conn


class Channel(virtual.Channel):
    """One SQLite connection per channel; every operation is one statement."""


    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        vhost = connection.client.virtual_host or "broker.sqlite3"
        self.database_path = os.path.abspath(vhost)
        self._lock = Lock()
        self._db = _connect(self.database_path)

    def _put(self, queue, message, **kwargs):
        with self._lock:
            self._db.execute(
                "INSERT INTO kombu_message (queue, payload) VALUES (?, ?)",
                (queue, json.dumps(message)),
            )

    def _get(self, queue, timeout=None):
        with self._lock:
            row = self._db.execute(
                "DELETE FROM kombu_message WHERE id = ("
                " SELECT id FROM kombu_message WHERE queue = ? ORDER BY id LIMIT 1"
                ") RETURNING payload",
                (queue,),
            ).fetchone()
        if row is None:
            raise Empty()
        return json.loads(row[0])

    def _size(self, queue):
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM kombu_message WHERE queue = ?", (queue,)
            ).fetchone()[0]

    def _purge(self, queue):
        with self._lock:
            cursor = self._db.execute("DELETE FROM kombu_message WHERE queue = ?", (queue,))
            return cursor.rowcount

    def _delete(self, queue, *args, **kwargs):
        self._purge(queue)

    def _has_queue(self, queue, **kwargs):
        return True

    def close(self):
        try:
            super().close()
        finally:
            try:
                self._db.close()
            except sqlite3.Error:
                pass


class Transport(virtual.Transport):
    Channel = Channel
    polling_interval = 0.1
    default_port = 0
    driver_type = "sqlite"
    driver_name = "sqlite3"
    connection_errors = (*virtual.Transport.connection_errors, sqlite3.OperationalError)
    channel_errors = (*virtual.Transport.channel_errors, sqlite3.DatabaseError)

    def driver_version(self):
        return sqlite3.sqlite_version


def register() -> None:
    TRANSPORT_ALIASES.setdefault("sqlite", "apps.core.broker:Transport")
