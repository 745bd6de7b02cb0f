"""The embedded SQLite broker loses no message and delivers none twice under load."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import time

from kombu import Connection, Exchange, Queue

from apps.core.broker import register

register()
EXCHANGE = Exchange("test", type="direct")
QUEUE = Queue("test", EXCHANGE, routing_key="test")


def produce(url: str, start: int, count: int) -> None:
    with Connection(url) as conn:
        producer = conn.Producer(serializer="json")
        for i in range(start, start + count):
            producer.publish({"n": i}, exchange=EXCHANGE, routing_key="test", declare=[QUEUE])


def consume(url: str, out, stop_after_idle: float) -> None:
    received = []
    with Connection(url, transport_options={"polling_interval": 0.001}) as conn:
        with conn.SimpleQueue(QUEUE) as queue:
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < stop_after_idle:
                try:
                    message = queue.get(timeout=0.05)
                except queue.Empty:
                    continue
                received.append(message.payload["n"])
                message.ack()
                idle_since = time.monotonic()
    out.put(received)


def test_three_producers_and_two_fast_polling_consumers_lose_and_duplicate_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    produce(url, -1, 1)  # creates the file and table before the race starts
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    consumers = [ctx.Process(target=consume, args=(url, out, 3.0)) for _ in range(2)]
    producers = [ctx.Process(target=produce, args=(url, k * 1000, 1000)) for k in range(3)]
    for p in consumers + producers:
        p.start()
    for p in producers:
        p.join(60)
    results = [out.get(timeout=60) for _ in consumers]
    for p in consumers:
        p.join(10)
    received = sorted(n for r in results for n in r)
    expected = sorted([-1] + [k * 1000 + i for k in range(3) for i in range(1000)])
    assert len(received) == len(set(received)), "a message was delivered twice"
    assert received == expected, f"lost {len(set(expected) - set(received))} messages"
    assert all(len(r) > 0 for r in results), "both consumers took part"


def test_a_consumed_message_leaves_no_row_behind(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.sqlite3'}"
    produce(url, 0, 5)
    with Connection(url) as conn, conn.SimpleQueue(QUEUE) as queue:
        for _ in range(5):
            queue.get(timeout=1).ack()
    rows = sqlite3.connect(tmp_path / "b.sqlite3").execute("select count(*) from kombu_message").fetchone()[0]
    assert rows == 0
    assert os.path.exists(tmp_path / "b.sqlite3")
