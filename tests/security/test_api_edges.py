"""The API's and the pages' edges: unknown JSON keys, unknown filter values, long queries."""

import json
from pathlib import Path
from urllib.parse import urlencode

import gunicorn.config
import pytest

from knowledge.models import KnowledgeEntry
from tests.factories import CategoryFactory
from tests.helpers.seeded_world import PASSWORD

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/knowledge/entries/"


def _send(client, method, url, body):
    return getattr(client, method)(url, data=json.dumps(body), content_type="application/json")


# --- Unknown keys in a JSON body ----------------------------------------------------------------


def _writes(seeded):
    agent, entry = seeded.agents[1].pk, seeded.entry.pk
    mine = f"/api/v1/agents/{seeded.agent.pk}/reviews/mine/"
    return [
        ("post", ENTRIES, {"title": "t", "content_type": "note", "owner": seeded.other.pk}),
        ("put", f"{ENTRIES}{entry}/", {"title": "t", "content_type": "note", "user": 1}),
        ("patch", f"{ENTRIES}{entry}/", {"titel": "typo"}),
        ("post", f"/api/v1/agents/{agent}/reviews/", {"rating": 4, "boddy": "typo"}),
        ("put", mine, {"rating": 4, "is_hidden": False}),
        ("patch", mine, {"ratting": 2}),
        ("post", "/api/v1/agents/search/", {"q": "agent", "min_ratting": 4}),
        ("post", "/api/v1/auth/token/", {"username": "owner", "password": PASSWORD, "otp": 1}),
    ]


def test_unknown_keys_in_every_json_write_are_a_400_naming_them(api, seeded):
    before = KnowledgeEntry.objects.count()
    for method, url, body in _writes(seeded):
        response = _send(api, method, url, body)
        assert response.status_code == 400, (method, url, response.status_code)
        known = {"title", "content_type", "rating", "q", "username", "password"}
        unknown = set(body) - known
        assert response.json() == {key: ["Unknown field."] for key in unknown}, (method, url)
    assert KnowledgeEntry.objects.count() == before
    seeded.entry.refresh_from_db()
    assert seeded.entry.user == seeded.owner and seeded.entry.title != "t"


def test_the_same_writes_without_the_unknown_keys_succeed(api, seeded):
    for method, url, body in _writes(seeded):
        known = {"title", "content_type", "rating", "q", "username", "password"}
        clean = {key: value for key, value in body.items() if key in known}
        if method == "patch" and not clean:
            clean = {"title": "fixed"}
        response = _send(api, method, url, clean)
        assert response.status_code in (200, 201), (method, url, response.content)


def test_read_only_fields_sent_back_are_ignored_not_refused(api, seeded):
    url = f"{ENTRIES}{seeded.entry.pk}/"
    entry = api.get(url).json()
    response = _send(api, "put", url, {**entry, "title": "Renamed", "id": 999})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == seeded.entry.pk


def test_unknown_query_parameters_stay_ignored(api):
    assert api.get("/api/v1/agents/search/", {"q": "agent", "utm_source": "x"}).status_code == 200
    assert api.get(ENTRIES, {"utm_source": "x"}).status_code == 200


# --- Unknown or malformed filter values: 400 naming the field, on every list -------------------

AGENTS = "/api/v1/marketplace/agents/"
SEARCH = "/api/v1/agents/search/"

API_FILTERS = [
    (AGENTS, {"category": "nope"}, "category"),
    (AGENTS, {"category": "not a slug"}, "category"),
    (AGENTS, {"publisher": "nope"}, "publisher"),
    (AGENTS, {"min_rating": "abc"}, "min_rating"),
    (AGENTS, {"featured": "maybe"}, "featured"),
    (AGENTS, {"ordering": "nope"}, "ordering"),
    ("/api/v1/marketplace/agents/featured/", {"ordering": "nope"}, "ordering"),
    (SEARCH, {"q": "agent", "category": "nope"}, "category"),
    (SEARCH, {"q": "agent", "min_rating": "abc"}, "min_rating"),
    (SEARCH, {"q": "agent", "ordering": "nope"}, "ordering"),
    (ENTRIES, {"content_type": "nope"}, "content_type"),
    (ENTRIES, {"agent": "abc"}, "agent"),
    (ENTRIES, {"agent": "999999"}, "agent"),
]


@pytest.mark.parametrize("url, params, field", API_FILTERS)
def test_an_invalid_or_unknown_api_filter_is_a_400_naming_the_field(api, url, params, field):
    response = api.get(url, params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


def test_an_invalid_search_filter_in_a_post_body_is_a_400_too(api):
    response = _send(api, "post", SEARCH, {"q": "agent", "category": "nope"})
    assert response.status_code == 400
    assert list(response.json()) == ["category"]


def test_known_filter_values_with_no_matches_are_an_empty_200(api, seeded):

    CategoryFactory(slug="empty-shelf")
    for url, params in [
        (AGENTS, {"category": "empty-shelf"}),
        (AGENTS, {"tag": "no-agent-has-this-tag"}),  # free text: no vocabulary to check
        (SEARCH, {"q": "zzzzqqq", "category": "writing"}),
        (ENTRIES, {"agent": str(seeded.agents[3].pk)}),
    ]:
        response = api.get(url, params)
        assert response.status_code == 200, (url, params, response.content)
        assert response.json()["results"] == []


PAGE_FILTERS = [
    ("/agents/", {"category": "nope"}, "Unknown category “nope”."),
    ("/agents/", {"min_rating": "abc"}, "Rating: Select a valid choice"),
    ("/agents/", {"sort": "nope"}, "Sort: Select a valid choice"),
    ("/search/", {"q": "agent", "category": "nope"}, "Unknown category “nope”."),
    ("/search/", {"q": "agent", "min_rating": "abc"}, "Rating: Select a valid choice"),
    ("/search/", {"q": "agent", "sort": "nope"}, "Sort by: Select a valid choice"),
    ("/knowledge/", {"type": "nope"}, "Select a valid choice"),
]


@pytest.mark.parametrize("url, params, message", PAGE_FILTERS)
def test_an_invalid_or_unknown_page_filter_is_a_400_page_naming_the_field(
    client, seeded, url, params, message
):
    client.force_login(seeded.owner)
    response = client.get(url, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<main" in html and message in html


def test_a_page_filter_on_a_category_with_no_listed_agents_is_an_empty_200(client, seeded):

    CategoryFactory(slug="empty-shelf")
    assert client.get("/agents/", {"category": "empty-shelf"}).status_code == 200
    assert client.get("/search/", {"q": "agent", "category": "empty-shelf"}).status_code == 200


# --- Long request lines --------------------------------------------------------------------------

GUNICORN_LIMIT_REQUEST_LINE = 4094  # gunicorn's default; aios/gunicorn.conf.py keeps it
WIDE = "\U0001f600"  # four UTF-8 bytes, twelve once percent-encoded: the widest character


def _longest_legitimate(seeded) -> dict[str, dict]:
    """Every query parameter of each list at its longest valid value."""
    cursor = "A" * 1000
    return {
        AGENTS: {
            "category": "c" * 80,
            "featured": "false",
            "publisher": "p" * 120,
            "tag": WIDE * 60,
            "min_rating": "4.5",
            "ordering": "-updated",
            "cursor": cursor,
            "page_size": "100",
        },
        SEARCH: {
            "q": WIDE * 200,
            "category": "c" * 80,
            "min_rating": "4.5",
            "ordering": "relevance",
            "cursor": cursor,
            "page_size": "100",
        },
        ENTRIES: {
            "content_type": "document",
            "agent": str(2**63 - 1),
            "q": WIDE * 200,
            "cursor": cursor,
            "page_size": "100",
        },
        "/api/v1/me/installations/": {"cursor": cursor, "page_size": "100"},
        f"/api/v1/agents/{seeded.agent.pk}/reviews/": {"cursor": cursor, "page_size": "100"},
    }


def test_the_longest_legitimate_query_of_every_list_fits_gunicorns_request_line(seeded):

    assert gunicorn.config.LimitRequestLine.default == GUNICORN_LIMIT_REQUEST_LINE

    conf = (Path(__file__).parents[2] / "aios" / "gunicorn.conf.py").read_text()
    assert "limit_request_line" not in conf  # the default holds; change the figure above if set
    for path, params in _longest_legitimate(seeded).items():
        line = f"GET {path}?{urlencode(params)} HTTP/1.1"
        assert len(line.encode()) <= GUNICORN_LIMIT_REQUEST_LINE - 300, (path, len(line))


def test_the_schema_documents_gunicorns_414_on_every_list(api):
    schema = api.get("/api/schema/?format=json").json()
    lists = ["/api/v1/marketplace/agents/", "/api/v1/agents/search/", ENTRIES]
    for path in lists:
        assert "414" in schema["paths"][path]["get"]["responses"], path
    assert "414" not in schema["paths"]["/api/v1/agents/{id}/"]["get"]["responses"]


def test_an_over_long_query_inside_the_line_is_the_apps_400(api):
    response = api.get(SEARCH, {"q": "a" * 201})
    assert response.status_code == 400
    assert list(response.json()) == ["q"]


@pytest.mark.parametrize(
    "url, params",
    [
        (AGENTS, {"category": "a\x00b"}),
        (AGENTS, {"publisher": "a\x00b"}),
        (SEARCH, {"q": "x", "category": "a\x00b"}),
        (ENTRIES, {"agent": str(2**64)}),
    ],
)
def test_a_filter_failing_its_format_is_not_looked_up(api, url, params):
    response = api.get(url, params)
    assert response.status_code == 400
    assert list(response.json()) == list(params)[-1:]
