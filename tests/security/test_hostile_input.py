"""Hostile input gets a clean 4xx (JSON on the API, a form error on pages), never a 500:
oversized bodies, deeply nested JSON, huge page sizes, forged cursors, NUL bytes, lone
surrogates, bidirectional overrides, invalid UTF-8."""

import json
import logging
from urllib.parse import quote

import pytest
from django.conf import settings
from django.urls import reverse

from knowledge.models import KnowledgeEntry

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/knowledge/entries/"


def _post_json(client, url, raw: bytes | str, method="post"):
    return getattr(client, method)(url, data=raw, content_type="application/json")


def _is_clean_json_4xx(response) -> bool:
    return 400 <= response.status_code < 500 and response["Content-Type"].startswith(
        "application/json"
    )


def _over_the_limit() -> str:
    return json.dumps({"title": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})


def _warnings_and_errors(caplog) -> list:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_body_over_the_upload_limit_is_refused_with_a_4xx(api):
    response = _post_json(api, ENTRIES, _over_the_limit())
    assert response.status_code in (400, 413)
    assert not KnowledgeEntry.objects.filter(title__startswith="xxx").exists()


@pytest.mark.parametrize(
    "method, url",
    [
        ("post", ENTRIES),
        ("patch", f"{ENTRIES}1/"),
        ("post", "/api/v1/agents/search/"),
        ("post", "/api/v1/auth/token/"),
        ("post", "/api/v1/agents/1/reviews/"),
        ("put", "/api/v1/agents/1/reviews/mine/"),
        ("post", "/api/v1/monitoring/"),  # not a DRF view
        ("post", "/api/v1/no-such-route/"),
    ],
)
def test_a_body_over_the_upload_limit_on_any_api_route_is_a_json_413_and_one_warning(
    api, caplog, method, url
):
    caplog.set_level(logging.INFO)
    response = _post_json(api, url, _over_the_limit(), method=method)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"Request body too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    }
    logged = _warnings_and_errors(caplog)
    assert [(r.levelname, r.exc_info) for r in logged] == [("WARNING", None)]
    assert "over the" in logged[0].getMessage()


def test_a_page_form_over_the_upload_limit_is_refused_with_a_4xx(client, seeded):
    client.force_login(seeded.owner)
    body = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)
    response = client.post(reverse("knowledge-create"), {"title": "t", "body": body})
    assert response.status_code in (400, 413)


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_json_is_a_clean_400(api, depth):
    for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = _post_json(api, ENTRIES, nested)
        assert _is_clean_json_4xx(response), (depth, response.status_code)
        response = _post_json(api, "/api/v1/agents/search/", nested)
        assert _is_clean_json_4xx(response), (depth, response.status_code)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/marketplace/agents/",
        "/api/v1/marketplace/categories/",
        "/api/v1/agents/search/?q=agent",
        ENTRIES,
        "/api/v1/me/installations/",
    ],
)
@pytest.mark.parametrize("page_size", ["100000000000", "-1", "0", "1e9", "NaN", "10;DROP"])
def test_huge_or_silly_page_sizes_are_refused_or_capped(api, url, page_size):
    joiner = "&" if "?" in url else "?"
    response = api.get(f"{url}{joiner}page_size={page_size}")
    if response.status_code == 200:  # capped, not honoured
        assert len(response.json()["results"]) <= 100
    else:
        assert _is_clean_json_4xx(response), response.status_code


FORGED_CURSORS = [
    "x",
    "eyJ2IjogMX0",  # base64 JSON of the wrong shape
    "%00",
    "a" * 5000,
    "../../etc/passwd",
    "\u202e",
    "' OR 1=1 --",
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_forged_cursors_are_a_clean_400_on_the_api(api, cursor):
    for url in ("/api/v1/marketplace/agents/", ENTRIES, "/api/v1/me/installations/"):
        response = api.get(url, {"cursor": cursor})
        assert response.status_code == 400, (url, response.status_code)
        assert "cursor" in response.json()


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_forged_cursors_on_pages_give_the_first_page_with_a_400(client, seeded, cursor):
    client.force_login(seeded.owner)
    for name in ("agent-list", "my-agents", "knowledge-list"):
        response = client.get(reverse(name), {"cursor": cursor})
        assert response.status_code == 400, (name, response.status_code)
        assert b"<main" in response.content  # a page, not a bare error


ODD_TEXT = {
    "nul": "before\x00after",
    "lone-surrogate": "\ud800",
    "rtl-override": "gpj.\u202eexe",
    "zero-width": "a\u200bb\ufeff",
    "combining": "e" + "\u0301" * 500,
    "control": "\x1b[31mred\x07",
}


@pytest.mark.parametrize("kind", ODD_TEXT)
def test_unicode_oddities_in_api_bodies_are_stored_or_refused_never_a_500(api, kind):
    text = ODD_TEXT[kind]
    raw = json.dumps({"title": text, "body": text, "content_type": "note"})  # \ud800 escaped
    response = _post_json(api, ENTRIES, raw)
    assert response.status_code in (201, 400), response.status_code
    if response.status_code == 201:
        entry = KnowledgeEntry.objects.get(pk=response.json()["id"])
        assert entry.title == text  # stored exactly, escaped on output
    else:
        assert _is_clean_json_4xx(response)
    if kind in ("nul", "lone-surrogate"):
        assert response.status_code == 400  # neither database can store them


@pytest.mark.parametrize("kind", ODD_TEXT)
def test_unicode_oddities_in_queries_and_reviews_never_give_a_500(api, client, seeded, kind):
    text = ODD_TEXT[kind]
    # What a client puts on the wire: UTF-8, a lone surrogate as its (invalid) three bytes.
    q = quote(text.encode("utf-8", "surrogatepass"))
    assert api.get(f"/api/v1/agents/search/?q={q}").status_code in (200, 400)
    assert api.get(f"/api/v1/marketplace/agents/?category={q}").status_code in (200, 400)
    assert client.get(f"{reverse('search')}?q={q}").status_code in (200, 400)
    agent = seeded.agents[1]
    response = _post_json(
        api, f"/api/v1/agents/{agent.pk}/reviews/", json.dumps({"rating": 3, "body": text})
    )
    assert response.status_code in (201, 400), response.status_code
    client.force_login(seeded.other)
    response = client.post(
        reverse("review-create", args=[seeded.agents[2].slug]),
        f"rating=3&body={q}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (302, 400), response.status_code


def test_invalid_utf8_in_paths_and_queries_is_never_a_500(api, client):
    for url in (
        "/agents/%ED%A0%80/",
        "/api/v1/agents/search/?q=%ff%fe",
        "/search/?q=%C0%AF",
        "/api/v1/marketplace/agents/?cursor=%80",
        "/knowledge/%00/",
    ):
        for who in (api, client):
            assert who.get(url).status_code < 500, url


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/agents/search/?q=%ff%fe",
        "/api/v1/marketplace/agents/?tag=%C0%AF",
        ENTRIES + "?q=%80",
    ],
)
def test_invalid_utf8_in_an_api_query_string_is_a_json_400(api, caplog, url):
    caplog.set_level(logging.INFO)
    response = api.get(url)
    assert response.status_code == 400
    assert response.json() == {"detail": "The query string is not valid UTF-8."}
    logged = _warnings_and_errors(caplog)
    assert [(r.levelname, r.exc_info) for r in logged] == [("WARNING", None)]


@pytest.mark.parametrize("url", ["/search/?q=%ff%fe", "/agents/?category=%C0%AF", "/?x=%80"])
def test_invalid_utf8_in_a_page_query_string_is_the_400_page(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert b"We could not read that request" in response.content


def test_valid_utf8_and_plus_signs_in_query_strings_still_pass(api, client):
    assert api.get("/api/v1/agents/search/?q=caf%C3%A9+%F0%9F%98%80").status_code == 200
    assert client.get("/search/?q=na%C3%AFve+agent").status_code == 200


def test_malformed_json_and_wrong_types_are_clean_400s(api, seeded):
    agent = seeded.agents[1]
    cases = [
        (ENTRIES, "{"),
        (ENTRIES, '"just a string"'),
        (ENTRIES, "[1, 2]"),
        (ENTRIES, '{"title": {"$gt": ""}}'),
        (ENTRIES, '{"title": "t", "tags": "not-a-list"}'),
        (ENTRIES, '{"title": "t", "content_type": "<script>"}'),
        (ENTRIES, '{"title": "t", "source_url": "javascript:alert(1)"}'),
        (f"/api/v1/agents/{agent.pk}/reviews/", '{"rating": "5; DROP TABLE"}'),
        (f"/api/v1/agents/{agent.pk}/reviews/", '{"rating": 1e309}'),
        (f"/api/v1/agents/{agent.pk}/reviews/", '{"rating": true}'),
        ("/api/v1/auth/token/", '{"username": ["a"], "password": {"b": 1}}'),
    ]
    for url, raw in cases:
        response = _post_json(api, url, raw)
        assert response.status_code == 400, (url, raw, response.status_code)
        assert _is_clean_json_4xx(response)
