"""The API's and the pages' edges: unknown JSON keys, unknown filter values, long queries."""

import json

import pytest
from django.test import Client

from knowledge.models import KnowledgeEntry
from tests.security.seed import PASSWORD, seed

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/knowledge/entries/"


@pytest.fixture
def seeded():
    return seed()


@pytest.fixture
def api(seeded):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_ENCODING="identity")
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {seeded.tokens['owner']}"
    return client


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
