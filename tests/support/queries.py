"""The query-count guard: a list answers N rows and 3N rows with the same number of queries.

A page whose query count grows with its rows (an N+1) is fine with the ten rows of a test
and falls over with the ten thousand of a busy team; comparing N with 3N catches it
without pinning an exact number that every harmless change would have to update.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable

from django.db import connection
from django.test.utils import CaptureQueriesContext

N = 3


def _get(client, url: str):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, f"GET {url}: {response.status_code} {response.content[:500]!r}"
    return response, [q["sql"] for q in ctx.captured_queries]


def _pairs(value, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, dict | list):
                into.add(f"{key}={item}")
            _pairs(item, into)
    elif isinstance(value, list):
        for item in value:
            _pairs(item, into)
    return into


def _missing(response, markers: Iterable[str]) -> list[str]:
    """Markers the response does not show: text in a page, ``key=value`` pairs anywhere in JSON."""
    if response["Content-Type"].startswith("application/json"):
        shown = _pairs(json.loads(response.content), set())
        return [m for m in markers if m not in shown]
    body = response.content.decode()
    return [m for m in markers if m not in body]


def _shape(sql: str) -> str:
    """The query with its values and column list left out, so repeats of one query count together."""
    sql = re.sub(r"^SELECT (?:DISTINCT )?.*? FROM ", "SELECT … FROM ", sql, count=1, flags=re.S)
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)
    return re.sub(r"\(\?(?:, \?)*\)", "(?…)", sql)


def _explain(url: str, small: list[str], large: list[str], n: int) -> str:
    before, after = Counter(map(_shape, small)), Counter(map(_shape, large))
    grown = sorted(((after[s], before.get(s, 0), s) for s in after if after[s] != before.get(s, 0)), reverse=True)
    lines = [f"GET {url}: {len(small)} queries with {n} rows, {len(large)} with {3 * n}; the queries whose count changed:"]
    lines += [f"  {was} -> {now} times: {sql[:400]}" for now, was, sql in grown]
    return "\n".join(lines)


def assert_constant_queries(client, url: str | Callable[[], str], add_rows: Callable[[int], list[str]],
                            *, n: int = N) -> None:
    """Add n rows, count the queries of GET url; add 2n more, count again: the counts must be equal.

    ``add_rows(k)`` adds k rows and returns one marker per row that the response must show
    (text of the page, or ``key=value`` of the JSON), so the guard cannot pass on a page
    that stopped listing them. ``url`` may be a callable, read at each request.
    """
    url_now = url if callable(url) else (lambda: url)
    markers = list(add_rows(n))
    client.get(url_now())  # the first request fills per-process caches (content types, sessions)
    _, small = _get(client, url_now())
    markers += add_rows(2 * n)
    response, large = _get(client, url_now())
    missing = _missing(response, markers)
    assert not missing, f"GET {url_now()} does not show {len(missing)} of its {len(markers)} rows: {missing[:5]}"
    assert len(large) == len(small), _explain(url_now(), small, large, n)
