"""One key-set cursor for every list: the API and the server-rendered pages page the same way.

A page is the `page_size` rows after (or before) a position in the sort order. The position is
the last row's (sort value, id), carried in a signed cursor, and the next page is filtered with
the row comparison `(sort, id) < (value, id)`, which PostgreSQL answers from the (sort, id)
indexes as an index range: page 500 costs what page 1 costs. The id tiebreaker makes the order
total, so thousands of agents at the same rating never skip or repeat a row. One extra row is
fetched to learn whether another page follows: no COUNT, no OFFSET.

    page = paginate_keyset(Agent.objects.listed().for_cards(),
                           ordering=("rating_average", "desc"),
                           cursor=request.GET.get("cursor"), page_size=20)
    page.items, page.next_cursor, page.previous_cursor

A sort is a (field, "asc"|"desc") pair; each app maps its public ordering names to pairs.

`KeysetPagination` wraps the same core for DRF (`{"next", "previous", "results"}` plus an
RFC 8288 `Link` header). A malformed, tampered or foreign cursor raises `InvalidCursor`
(a 400 in the API).
"""

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Expression, F, Value
from django.db.models.fields import BooleanField
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from aios.api import fields
from aios.statements import Shape, Slot

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CURSOR_SALT = "aios.pagination.cursor"
# What a cursor looks like: a base64url payload, a colon, a base64url signature.
CURSOR_PATTERN = r"^[A-Za-z0-9_=-]+:[A-Za-z0-9_=-]+$"

# A sort spec: (field, "asc"|"desc").
SortSpec = tuple[str, str]


class InvalidCursor(ValueError):
    """The cursor is malformed, tampered with, or belongs to another ordering."""


@dataclass(frozen=True)
class KeysetPage:
    items: list
    next_cursor: str | None
    previous_cursor: str | None


class RowCompare(Expression):
    """`(a, b) < (x, y)` as one SQL row comparison (PostgreSQL and SQLite >= 3.15).

    Written as a row value rather than `a < x OR (a = x AND b < y)` so PostgreSQL uses the
    whole comparison as the start of an index range scan on (a, b).
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, lhs, op: str, rhs):
        super().__init__()
        self.lhs, self.op, self.rhs = list(lhs), op, list(rhs)

    def get_source_expressions(self):
        return [*self.lhs, *self.rhs]

    def set_source_expressions(self, exprs):
        width = len(self.lhs)
        self.lhs, self.rhs = list(exprs[:width]), list(exprs[width:])

    def as_sql(self, compiler, connection):
        sql, params = [], []
        for side in (self.lhs, self.rhs):
            parts = []
            for expr in side:
                part_sql, part_params = compiler.compile(expr)
                parts.append(part_sql)
                params.extend(part_params)
            sql.append(f"({', '.join(parts)})")
        return f"{sql[0]} {self.op} {sql[1]}", params


def resolve_sort(ordering: SortSpec) -> tuple[str, str, str]:
    """(field, direction, key) for a sort spec; key names the ordering inside cursors."""
    field, direction = ordering
    if direction not in ("asc", "desc"):
        raise ValueError(f"direction must be 'asc' or 'desc', not {direction!r}")
    return field, direction, f"{field}:{direction}"


def _sort_field(queryset, name: str):
    """The model field or annotation output field behind a sort name (for value conversion)."""
    query = getattr(queryset, "query", None)  # a Shape sorts by a model field
    annotation = query.annotations.get(name) if query is not None else None
    if annotation is not None:
        return annotation.output_field
    try:
        return queryset.model._meta.get_field(name)
    except FieldDoesNotExist as exc:
        raise ValueError(f"cannot sort {queryset.model.__name__} by {name!r}") from exc


def _signer() -> signing.Signer:
    return signing.Signer(salt=CURSOR_SALT)


def encode_cursor(*, key: str, value, pk: int, backwards: bool) -> str:
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    payload = {"o": key, "v": value, "i": pk}
    if backwards:
        payload["b"] = 1
    # Plain Signer (no timestamp): the same position always gives the same cursor, so links
    # are stable and shareable.
    return _signer().sign_object(payload)


def decode_cursor(token: str, *, key: str, field) -> tuple[object, int, bool]:
    """(sort value, id, backwards) from a cursor made for the ordering `key`."""
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError) as exc:
        raise InvalidCursor("Invalid cursor.") from exc
    if not isinstance(payload, dict) or payload.get("o") != key:
        raise InvalidCursor("Invalid cursor.")
    pk, raw = payload.get("i"), payload.get("v")
    if isinstance(pk, bool) or not isinstance(pk, int) or raw is None:
        raise InvalidCursor("Invalid cursor.")
    try:
        value = field.to_python(raw)
    except (ValidationError, TypeError, ValueError) as exc:
        raise InvalidCursor("Invalid cursor.") from exc
    return value, pk, bool(payload.get("b"))


def paginate_keyset(
    queryset, *, ordering: SortSpec, cursor: str | None, page_size: int
) -> KeysetPage:
    """One page of `queryset` in `ordering` after/before `cursor`, in one query.

    Rows must have a non-null sort value. The queryset's own ordering is replaced. A values()
    queryset, or an aios.statements.Shape of one, pages too: its rows must carry "id" and the
    sort field.
    """
    field_name, direction, key = resolve_sort(ordering)
    field = _sort_field(queryset, field_name)
    position, backwards = None, False
    if cursor:
        value, pk, backwards = decode_cursor(cursor, key=key, field=field)
        position = (value, pk)
    # Walking backwards reads the reversed order from the position, then flips the rows.
    descending = (direction == "desc") != backwards
    rows = _fetch(queryset, field_name, field, descending, position, page_size)
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
    if not rows:
        # Only reachable when rows vanished after the cursor was made: nowhere left to go.
        return KeysetPage([], None, None)

    def at(row, *, back: bool) -> str:
        if isinstance(row, dict):  # a values() row: the lean read paths
            return encode_cursor(key=key, value=row[field_name], pk=row["id"], backwards=back)
        return encode_cursor(key=key, value=getattr(row, field_name), pk=row.pk, backwards=back)

    if backwards:
        # A backwards page came from a later page, so a next page exists.
        previous_cursor = at(rows[0], back=True) if more else None
        return KeysetPage(rows, at(rows[-1], back=False), previous_cursor)
    next_cursor = at(rows[-1], back=False) if more else None
    previous_cursor = at(rows[0], back=True) if cursor else None
    return KeysetPage(rows, next_cursor, previous_cursor)


def _fetch(queryset, field_name: str, field, descending: bool, position, page_size: int) -> list:
    """`page_size + 1` rows past `position` (sort value, id), or from the start: the extra row
    tells whether another page follows."""

    def page(queryset, after):
        if descending:
            queryset = queryset.order_by(F(field_name).desc(), F("pk").desc())
        else:
            queryset = queryset.order_by(F(field_name).asc(), F("pk").asc())
        if after:
            op = "<" if descending else ">"
            queryset = queryset.filter(RowCompare([F(field_name), F("pk")], op, after))
        return queryset[: page_size + 1]

    if isinstance(queryset, Shape):  # a statement compiled once per page shape
        step = ("page", field_name, descending, position is not None, page_size)
        if position is None:
            return queryset.then(step, lambda qs: page(qs, None)).rows()
        slots = [Slot("cursor_value", field), Slot("cursor_id", queryset.model._meta.pk)]
        value, pk = position
        shape = queryset.then(step, lambda qs: page(qs, slots), cursor_value=value, cursor_id=pk)
        return shape.rows()
    after = [Value(position[0], output_field=field), Value(position[1])] if position else None
    return list(page(queryset, after))


# --- Pages ------------------------------------------------------------------------------------


def page_or_first(request, queryset, *, ordering: SortSpec, page_size: int):
    """(page, status) for a server-rendered list at `?cursor=`: a broken cursor gives the
    first page, a warning message and a 400 status, never a 500."""
    cursor = request.GET.get("cursor") or None
    try:
        return paginate_keyset(queryset, ordering=ordering, cursor=cursor, page_size=page_size), 200
    except InvalidCursor:
        messages.warning(request, "That page link is no longer valid, so here is the first page.")
        return paginate_keyset(queryset, ordering=ordering, cursor=None, page_size=page_size), 400


# --- DRF --------------------------------------------------------------------------------------


class PageParams(fields.StrictSerializer):
    """`page_size` and `cursor`, from a list's query string or (with more keys) a JSON body."""

    page_size = fields.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
    cursor = fields.RegexField(
        CURSOR_PATTERN,
        required=False,
        max_length=1000,
        help_text="Opaque position from a next/previous link.",
    )


def page_params(data) -> dict:
    """Validated `page_size` and `cursor` from query params (400 on bad input)."""
    given = {name: data[name] for name in ("page_size", "cursor") if name in data}
    return fields.validated(PageParams, given)


class KeysetPagination(BasePagination):
    """DRF face of `paginate_keyset`. Views name their order with `get_keyset_ordering()`.

    Links carry the current query string (or `link_params` when the input came in a body,
    as for POST search) with the cursor replaced.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        params = page_params(request.query_params)
        # Views name their order; one that does not pages newest id first.
        get_ordering = getattr(view, "get_keyset_ordering", None)
        ordering = get_ordering() if get_ordering is not None else ("id", "desc")
        return self.paginate(
            queryset,
            request=request,
            ordering=ordering,
            cursor=params.get("cursor") or None,
            page_size=params["page_size"],
        )

    def paginate(self, queryset, *, request, ordering, cursor, page_size, link_params=None):
        try:
            self.page = paginate_keyset(
                queryset, ordering=ordering, cursor=cursor, page_size=page_size
            )
        except InvalidCursor as exc:
            raise serializers.ValidationError({"cursor": [str(exc)]}) from exc
        self.request = request
        self.link_params = link_params
        return self.page.items

    def _link(self, token: str | None) -> str | None:
        if token is None:
            return None
        if self.link_params is not None:
            base = self.request.build_absolute_uri(self.request.path)
            params = {
                name: value for name, value in self.link_params.items() if value not in (None, "")
            }
            params[self.cursor_query_param] = token
            return f"{base}?{urlencode(params)}"
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, token)

    def get_paginated_response(self, data):
        next_url = self._link(self.page.next_cursor)
        previous_url = self._link(self.page.previous_cursor)
        headers = {}
        pairs = ((next_url, "next"), (previous_url, "prev"))
        links = [f'<{url}>; rel="{rel}"' for url, rel in pairs if url]
        if links:
            headers["Link"] = ", ".join(links)
        body = OrderedDict([("next", next_url), ("previous", previous_url), ("results", data)])
        return Response(body, headers=headers)

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a `next`/`previous` link.",
                "schema": {"type": "string", "pattern": CURSOR_PATTERN},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]


# --- Admin --------------------------------------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """The admin changelist's paginator for tables of millions of rows.

    An unfiltered changelist on PostgreSQL takes the planner's row estimate (`pg_class.reltuples`,
    kept by autovacuum's ANALYZE) once it is above `ADMIN_ESTIMATED_COUNT_ABOVE`, instead of a
    `COUNT(*)` over the whole table on every page view; the figure shown is then approximate.
    Below the threshold, with a filter or search, or on SQLite (no cheap estimate; the embedded
    default holds small data) the count is exact.
    """

    @cached_property
    def count(self) -> int:
        estimate = _estimated_rows(self.object_list)
        if estimate is not None and estimate > settings.ADMIN_ESTIMATED_COUNT_ABOVE:
            return estimate
        return super().count


def _estimated_rows(queryset) -> int | None:
    query = getattr(queryset, "query", None)
    if query is None or query.where or query.distinct or query.combinator:
        return None
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 (PostgreSQL 14+) or 0: never analysed, so no estimate to trust.
    return row[0] if row and row[0] and row[0] > 0 else None
