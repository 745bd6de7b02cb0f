"""Pages of lists that grow without bound, newest first, read by key instead of by count and offset.

A numbered page costs a ``COUNT(*)`` of everything the filter matches and an ``OFFSET`` that
reads and drops every row before it: measured here on 1,000,000 audit events, 150 ms for the
first page and 300 ms for page 5,000, growing with the table. A keyset page reads its rows
from the primary key's index (``id < cursor ORDER BY id DESC LIMIT size + 1``): the same few
milliseconds on the first page and the last, with no count at all. What it gives up is the
page number and the total, which nobody reads on a log of a million rows.

Pages use ``?before=<id>`` (older rows) and ``?after=<id>`` (newer rows); the API lists use
``?before=`` and ``?limit=`` (``?offset=`` for a list the client sorts) and say where the next
page is in a ``Link`` header, so their bodies stay the JSON arrays they always were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.exceptions import BadRequest, ValidationError
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

MAX_CURSOR = 2**63 - 1
API_DEFAULT_LIMIT = 50
API_MAX_LIMIT = 200
MAX_OFFSET = 100_000
CURSOR_PARAMS = ("before", "after", "page")
MAX_CURSOR_DIGITS = len(str(MAX_CURSOR))
LIMIT_PARAMETER = OpenApiParameter(
    "limit", int, description=f"rows per page, 1 to {API_MAX_LIMIT} (default {API_DEFAULT_LIMIT})")
NEXT_LINK_HEADER = OpenApiParameter(
    "Link", str, location=OpenApiParameter.HEADER, response=[200],
    description='the next page, as `<url>; rel="next"`; absent on the last page')
LIST_PARAMETERS = [
    LIMIT_PARAMETER,
    OpenApiParameter("before", int, description="only rows older than this id: the next page, as the response's "
                                                 'Link header (rel="next") gives it'),
    NEXT_LINK_HEADER,
]
SORTED_LIST_PARAMETERS = [
    LIMIT_PARAMETER,
    OpenApiParameter("offset", int, description=f"rows to skip, 0 to {MAX_OFFSET}: the next page, as the response's "
                                                 'Link header (rel="next") gives it'),
    NEXT_LINK_HEADER,
]


class CursorRefused(BadRequest):
    """A page's ``?before=``/``?after=`` that is no row id: a 400 page saying so (see mlops_web.errors)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.field = name


@dataclass
class KeysetPage:
    rows: list
    older: int | None = None  # the ``before`` cursor of the next, older page
    newer: int | None = None  # the ``after`` cursor of the previous, newer page
    params: dict = field(default_factory=dict)  # the request's other parameters, kept by the links

    @property
    def object_list(self) -> list:  # as a Django Paginator page names its rows
        return self.rows

    @property
    def has_other_pages(self) -> bool:
        return self.older is not None or self.newer is not None

    def _link(self, **cursor) -> str:
        return "?" + urlencode(self.params | cursor)

    @property
    def older_url(self) -> str:
        return self._link(before=self.older)

    @property
    def newer_url(self) -> str:
        return self._link(after=self.newer)

    @property
    def newest_url(self) -> str:
        return self._link()

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _whole_number(raw: str, most: int) -> int | None:
    """``raw`` as an int in 0..most, or None; ASCII digits only (``int`` takes '١' and '1_0')
    and few enough of them that ``int`` never meets its digit limit."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(most)):
        return None
    value = int(raw)
    return value if value <= most else None


def parse_cursor(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    value = _whole_number(raw, MAX_CURSOR)
    if value is None:
        raise ValidationError({name: f"{name} must be a row id (a whole number), got {raw[:40]!r}."})
    return value


def keyset_page(queryset, *, before: int | None = None, after: int | None = None, size: int,
                params: dict | None = None) -> KeysetPage:
    """``size`` rows of ``queryset`` by descending ``id``: the newest, those older than ``before``,
    or those newer than ``after``. One query; the links keep ``params`` (the page's filters)."""
    kept = {k: v for k, v in (params or {}).items() if k not in CURSOR_PARAMS and v not in ("", None)}
    if after is not None:
        rows = list(queryset.filter(id__gt=after).order_by("id")[:size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return KeysetPage(rows, older=rows[-1].id if rows else min(after + 1, MAX_CURSOR),
                          newer=rows[0].id if rows and more_newer else None, params=kept)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    rows = list(queryset.order_by("-id")[:size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    newer = None
    if before is not None:  # we came from newer rows; an empty page still links back to them
        newer = rows[0].id if rows else max(before - 1, 0)
    return KeysetPage(rows, older=rows[-1].id if rows and more_older else None, newer=newer, params=kept)


def page_from_request(request, queryset, *, size: int) -> KeysetPage:
    """A keyset page of ``queryset`` for a page's ``?before=`` or ``?after=``. The pager's links
    only ever carry row ids, so anything else was typed or forged: a 400 page names it."""
    cursors = {}
    for name in ("before", "after"):
        raw = request.GET.get(name)
        if raw not in (None, ""):
            cursors[name] = _whole_number(raw, MAX_CURSOR)
            if cursors[name] is None:
                raise CursorRefused(name, f"“{name}” must be a row id (a whole number of at most "
                                          f"{MAX_CURSOR_DIGITS} digits); follow the page's own links.")
    if len(cursors) > 1:
        raise CursorRefused("after", "Give “before” or “after”, not both.")
    return keyset_page(queryset, before=cursors.get("before"), after=cursors.get("after"), size=size,
                       params=request.GET.dict())


def api_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return API_DEFAULT_LIMIT
    value = _whole_number(raw, API_MAX_LIMIT)
    if not value:
        raise ValidationError({"limit": f"limit must be a whole number from 1 to {API_MAX_LIMIT}."})
    return value


def api_page(request, queryset, *, limit: int | None = None) -> tuple[list, str | None]:
    """The rows of an API list for ``?before=`` and ``?limit=``, newest first, and the URL of the
    next (older) page or None. Bad values raise ``ValidationError`` naming the parameter (a 400)."""
    limit = limit or api_limit(request.query_params.get("limit"))
    page = keyset_page(queryset, before=parse_cursor(request.query_params.get("before"), "before"), size=limit)
    if page.older is None:
        return page.rows, None
    query = {k: v for k, v in request.query_params.items() if k not in CURSOR_PARAMS} | {"before": page.older}
    return page.rows, request.build_absolute_uri(request.path) + "?" + urlencode(query)


def api_list_response(request, queryset, body) -> Response:
    """An API list: a JSON array of ``body(row)``, newest first, the next page in a ``Link`` header."""
    rows, next_url = api_page(request, queryset)
    return with_next_link(Response([body(row) for row in rows]), next_url)


def with_next_link(response: Response, next_url: str | None) -> Response:
    if next_url:
        response["Link"] = f'<{next_url}>; rel="next"'
    return response


def api_sorted_page(request, queryset) -> tuple[list, str | None]:
    """An API list in an order the client chose (``queryset`` is ordered): ``?offset=`` and
    ``?limit=``, for lists that stay small enough to count past (datasets, not logs)."""
    limit = api_limit(request.query_params.get("limit"))
    offset = _whole_number(request.query_params.get("offset") or "0", MAX_OFFSET)
    if offset is None:
        raise ValidationError({"offset": f"offset must be a whole number from 0 to {MAX_OFFSET}."})
    rows = list(queryset[offset:offset + limit + 1])
    if len(rows) <= limit:
        return rows, None
    query = {k: v for k, v in request.query_params.items() if k != "offset"} | {"offset": offset + limit}
    return rows[:limit], request.build_absolute_uri(request.path) + "?" + urlencode(query)
