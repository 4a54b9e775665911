import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aios.pagination import (
    CURSOR_SALT,
    InvalidCursor,
    encode_cursor,
    paginate_keyset,
)
from marketplace.managers import AGENT_ORDERINGS
from marketplace.models import Agent
from tests.factories import AgentFactory, CategoryFactory, PublisherFactory, bulk_agents

TOP_RATED = AGENT_ORDERINGS["-rating"]


def _walk(queryset, ordering, page_size):
    """Every page from the first, following next cursors; returns the pages' id lists."""
    pages, cursor = [], None
    while True:
        page = paginate_keyset(queryset, ordering=ordering, cursor=cursor, page_size=page_size)
        pages.append([a.pk for a in page.items])
        if page.next_cursor is None:
            return pages, page
        cursor = page.next_cursor


@pytest.fixture
def tied_agents(db):
    """23 agents, most sharing a rating, install count and creation time (ties everywhere)."""
    category, publisher = CategoryFactory(), PublisherFactory()
    agents = AgentFactory.create_batch(
        20, category=category, publisher=publisher, rating_average=4.0, install_count=7
    )
    agents += [
        AgentFactory(category=category, publisher=publisher, rating_average=r, install_count=i)
        for r, i in ((4.5, 100), (3.0, 1), (0.0, 0))
    ]
    same_time = agents[0].created_at
    Agent.objects.filter(pk__in=[a.pk for a in agents[:20]]).update(created_at=same_time)
    return agents


@pytest.mark.parametrize("ordering", list(AGENT_ORDERINGS))
@pytest.mark.parametrize("page_size", [1, 4, 7, 23, 50])
def test_walking_next_visits_every_row_exactly_once_in_order(tied_agents, ordering, page_size):
    queryset = Agent.objects.listed().for_cards()
    pages, _ = _walk(queryset, AGENT_ORDERINGS[ordering], page_size)
    walked = [pk for page in pages for pk in page]
    expected = list(queryset.ordered(ordering).values_list("pk", flat=True))
    assert walked == expected
    assert len(set(walked)) == len(tied_agents)
    assert all(len(p) == page_size for p in pages[:-1])


@pytest.mark.parametrize(
    "ordering", [TOP_RATED, ("name", "asc"), ("created_at", "desc"), ("id", "asc")]
)
def test_previous_walks_back_to_the_same_pages(tied_agents, ordering):
    queryset = Agent.objects.listed()
    pages, last = _walk(queryset, ordering, 5)
    back, page = [], last
    while page.previous_cursor is not None:
        page = paginate_keyset(
            queryset, ordering=ordering, cursor=page.previous_cursor, page_size=5
        )
        back.append([a.pk for a in page.items])
    assert back == pages[-2::-1]
    # Back on the first page: nothing before it, and next leads forward again.
    assert page.previous_cursor is None
    again = paginate_keyset(queryset, ordering=ordering, cursor=page.next_cursor, page_size=5)
    assert [a.pk for a in again.items] == pages[1]


def test_first_page_has_no_previous_and_last_page_has_no_next(tied_agents):
    queryset = Agent.objects.listed()
    first = paginate_keyset(queryset, ordering=TOP_RATED, cursor=None, page_size=100)
    assert first.previous_cursor is None
    assert first.next_cursor is None
    assert len(first.items) == len(tied_agents)


def test_one_query_per_page_whatever_the_page_size(tied_agents):
    queryset = Agent.objects.listed().for_cards()
    cursor = paginate_keyset(queryset, ordering=TOP_RATED, cursor=None, page_size=3).next_cursor
    for size in (1, 10, 100):
        with CaptureQueriesContext(connection) as queries:
            page = paginate_keyset(queryset, ordering=TOP_RATED, cursor=cursor, page_size=size)
            [(a.category.name, a.publisher.name) for a in page.items]
        assert len(queries) == 1
        sql = queries[0]["sql"].upper()
        assert "OFFSET" not in sql
        assert "COUNT(" not in sql


def test_cursor_is_stable_for_the_same_position(tied_agents):
    queryset = Agent.objects.listed()
    one = paginate_keyset(queryset, ordering=AGENT_ORDERINGS["-installs"], cursor=None, page_size=4)
    two = paginate_keyset(queryset, ordering=AGENT_ORDERINGS["-installs"], cursor=None, page_size=4)
    assert one.next_cursor == two.next_cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "e30:bad-signature",
        signing.Signer(salt="another-salt").sign_object(
            {"o": "rating_average:desc", "v": 4.0, "i": 1}
        ),
        signing.Signer(salt=CURSOR_SALT).sign_object(
            {"o": "rating_average:desc", "v": 4.0, "i": "1"}
        ),
        signing.Signer(salt=CURSOR_SALT).sign_object(
            {"o": "rating_average:desc", "v": "x", "i": 1}
        ),
        signing.Signer(salt=CURSOR_SALT).sign_object([1, 2]),
    ],
)
def test_tampered_or_malformed_cursor_is_rejected(tied_agents, cursor):
    with pytest.raises(InvalidCursor):
        paginate_keyset(Agent.objects.listed(), ordering=TOP_RATED, cursor=cursor, page_size=5)


def test_cursor_of_another_ordering_is_rejected(tied_agents):
    queryset = Agent.objects.listed()
    cursor = paginate_keyset(
        queryset, ordering=AGENT_ORDERINGS["name"], cursor=None, page_size=2
    ).next_cursor
    with pytest.raises(InvalidCursor):
        paginate_keyset(queryset, ordering=TOP_RATED, cursor=cursor, page_size=2)


def test_edited_payload_fails_the_signature(tied_agents):
    queryset = Agent.objects.listed()
    cursor = paginate_keyset(queryset, ordering=TOP_RATED, cursor=None, page_size=2).next_cursor
    other = encode_cursor(key="rating_average:desc", value=1.0, pk=1, backwards=False)
    forged = other.split(":")[0] + ":" + cursor.split(":")[1]
    with pytest.raises(InvalidCursor):
        paginate_keyset(queryset, ordering=TOP_RATED, cursor=forged, page_size=2)


def test_unknown_ordering_is_a_value_error(db):
    with pytest.raises(ValueError):
        paginate_keyset(
            Agent.objects.all(), ordering=("popularity", "desc"), cursor=None, page_size=2
        )


@pytest.mark.postgres
@pytest.mark.parametrize("ordering", list(AGENT_ORDERINGS.values()))
def test_deep_page_uses_an_index_range_and_no_offset(db, ordering):
    bulk_agents(3000, each=lambda i: {"rating_average": (i % 5) + 0.5, "install_count": i % 50})
    queryset = Agent.objects.listed().for_cards()
    cursor = None
    for _ in range(40):  # 40 pages deep
        cursor = paginate_keyset(
            queryset, ordering=ordering, cursor=cursor, page_size=20
        ).next_cursor
    with CaptureQueriesContext(connection) as queries:
        paginate_keyset(queryset, ordering=ordering, cursor=cursor, page_size=20)
    sql = queries[0]["sql"]
    assert "OFFSET" not in sql.upper()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cur.fetchall())
    # The row comparison is the index range's start, not a filter over rows read in order.
    assert "Index Cond: (ROW(" in plan, plan
    assert "Seq Scan on marketplace_agents" not in plan, plan
    assert "Sort" not in plan.split("->")[0], plan


def test_drf_pagination_defaults_to_newest_id_first_and_renders_links(tied_agents):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from aios.pagination import KeysetPagination

    request = Request(APIRequestFactory().get("/x/", {"page_size": 5, "q": "keep"}))
    paginator = KeysetPagination()
    items = paginator.paginate_queryset(Agent.objects.all(), request, view=object())
    expected = list(Agent.objects.order_by("-id").values_list("pk", flat=True)[:5])
    assert [a.pk for a in items] == expected
    response = paginator.get_paginated_response([a.pk for a in items])
    assert response.data["previous"] is None
    assert "q=keep" in response.data["next"] and "cursor=" in response.data["next"]
    assert response["Link"] == f'<{response.data["next"]}>; rel="next"'


@pytest.mark.postgres
def test_the_featured_first_page_reads_its_index_in_order(db):
    bulk_agents(3000, each=lambda i: {"rating_average": (i % 50) / 10, "is_featured": i % 10 == 0})
    with CaptureQueriesContext(connection) as queries:
        paginate_keyset(
            Agent.objects.featured().for_cards(), ordering=TOP_RATED, cursor=None, page_size=20
        )
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + queries[0]["sql"])
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "agent_featured_rating_idx" in plan, plan
    assert "Sort" not in plan.split("->")[0], plan
