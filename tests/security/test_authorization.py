"""Who may do what: every page and endpoint x {anonymous, owner, other user, staff}.

The GET table must name every route of the URLconf (a new page or endpoint fails the first
test until its row is written); the seeded owner has an installation, a review and a private
knowledge entry, the other user has their own. Knowledge entries and installations are
owner-only and answer 404 (not 403) to anyone else, staff included; the admin and the
monitoring views are staff-only; cached responses never carry one user's data to another.
"""

import pytest
from django.test import Client

from knowledge.models import KnowledgeEntry
from marketplace.models import Installation, Review
from tests.helpers.routes import all_routes, concrete_urls
from tests.helpers.seeded_world import seed

pytestmark = pytest.mark.django_db

WHO = ("anonymous", "owner", "other", "staff")
OUTSIDE = "203.0.113.5"  # not a local address: /metrics answers local scrapers only

# pattern -> expected status for (anonymous, owner, other, staff). The {pk} of knowledge
# routes is the owner's entry; of agent routes, an agent the owner and other both reviewed.
GET_MATRIX = {
    "metrics": (403, 403, 403, 403),
    "healthz": (200, 200, 200, 200),
    "readyz": (200, 200, 200, 200),
    "api/v1/monitoring/": (401, 403, 403, 200),
    "staff/monitoring/": (302, 302, 302, 200),
    "api/v1/marketplace/agents/": (200, 200, 200, 200),
    "api/v1/marketplace/agents/featured/": (200, 200, 200, 200),
    "api/v1/marketplace/categories/": (200, 200, 200, 200),
    "api/v1/marketplace/stats/": (200, 200, 200, 200),
    "api/v1/agents/search/": (400, 400, 400, 400),  # q is required
    "api/v1/agents/<int:pk>/": (200, 200, 200, 200),
    "api/v1/agents/<int:pk>/install/": (401, 405, 405, 405),
    "api/v1/agents/<int:pk>/reviews/": (200, 200, 200, 200),
    "api/v1/agents/<int:pk>/reviews/mine/": (401, 200, 200, 404),  # each their own review
    "api/v1/me/installations/": (401, 200, 200, 200),
    "api/v1/auth/token/": (405, 405, 405, 405),
    "api/v1/knowledge/^entries/$": (401, 200, 200, 200),
    "api/v1/knowledge/^entries/(?P<pk>[^/.]+)/$": (401, 200, 404, 404),
    "api/schema/": (200, 200, 200, 200),
    "api/docs/": (200, 200, 200, 200),
    "knowledge/": (302, 200, 200, 200),
    "knowledge/new/": (302, 200, 200, 200),
    "knowledge/<int:pk>/": (302, 200, 404, 404),
    "knowledge/<int:pk>/edit/": (302, 200, 404, 404),
    "knowledge/<int:pk>/delete/": (302, 200, 404, 404),
    "accounts/password/reset/": (200, 200, 200, 200),
    "accounts/password/reset/sent/": (200, 200, 200, 200),
    "accounts/password/reset/<uidb64>/<token>/": (200, 200, 200, 200),
    "accounts/password/reset/complete/": (200, 200, 200, 200),
    "": (200, 200, 200, 200),
    "agents/": (200, 200, 200, 200),
    "agents/<slug:slug>/": (200, 200, 200, 200),
    "agents/<slug:slug>/reviews/": (200, 200, 200, 200),
    "agents/<slug:slug>/install/": (302, 405, 405, 405),
    "agents/<slug:slug>/uninstall/": (302, 405, 405, 405),
    "agents/<slug:slug>/review/": (302, 405, 405, 405),
    "agents/<slug:slug>/review/edit/": (302, 405, 405, 405),
    "agents/<slug:slug>/review/delete/": (302, 405, 405, 405),
    "search/": (200, 200, 200, 200),
    "stats/": (200, 200, 200, 200),
    "me/agents/": (302, 200, 200, 200),
    "accounts/signup/": (200, 302, 302, 302),
    "accounts/login/": (200, 200, 200, 200),
    "accounts/logout/": (405, 405, 405, 405),
    "accounts/password/": (302, 200, 200, 200),
    "accounts/password/done/": (302, 200, 200, 200),
    "media/icons/<path:name>": (404, 404, 404, 404),
}


@pytest.fixture
def seeded():
    return seed()


def _clients(seeded) -> dict[str, Client]:
    """A browser per identity: a session for pages, the same user's token for the API."""
    clients = {}
    for who in WHO:
        client = Client(REMOTE_ADDR=OUTSIDE, HTTP_ACCEPT_ENCODING="identity")
        if who != "anonymous":
            user = getattr(seeded, who)
            client.force_login(user)
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {seeded.tokens[user.username]}"
        clients[who] = client
    return clients


def test_every_route_outside_the_admin_has_a_row_in_the_table():
    routes = {route.pattern for route in all_routes() if not route.is_admin}
    assert routes - set(GET_MATRIX) == set(), "new routes: add their expected statuses"
    assert set(GET_MATRIX) - routes == set(), "rows for routes that no longer exist"


def test_get_matrix(seeded):
    clients = _clients(seeded)
    wrong = []
    for route, path in concrete_urls(seeded, include_admin=False):
        for who, expected in zip(WHO, GET_MATRIX[route.pattern], strict=True):
            status = clients[who].get(path).status_code
            if status != expected:
                wrong.append(f"GET {path} as {who}: {status}, expected {expected}")
    assert wrong == [], "\n".join(wrong)


def test_the_admin_is_staff_only(seeded):
    clients = _clients(seeded)
    admin_routes = [(r, p) for r, p in concrete_urls(seeded) if r.is_admin]
    assert len(admin_routes) > 20
    wrong = []
    for route, path in admin_routes:
        for who in WHO:
            response = clients[who].get(path)
            location = response.get("Location", "")
            if route.name in ("login", "logout"):
                ok = response.status_code < 500
            elif who == "staff":
                ok = response.status_code < 500 and not location.startswith("/admin/login/")
            else:
                ok = response.status_code == 302 and location.startswith("/admin/login/")
            if not ok:
                wrong.append(f"GET {path} as {who}: {response.status_code} {location}")
    assert wrong == [], "\n".join(wrong)


# --- Writes -----------------------------------------------------------------------------------


def _api(seeded, agent_index=0):
    return f"/api/v1/agents/{seeded.agents[agent_index].pk}/"


def _entry(seeded):
    return f"/api/v1/knowledge/entries/{seeded.entry.pk}/"


# (name, method, url(seeded), JSON body or form, expected for WHO)
WRITES = [
    ("api install", "post", lambda s: _api(s, 1) + "install/", None, (401, 201, 201, 201)),
    ("api uninstall", "delete", lambda s: _api(s) + "install/", None, (401, 204, 204, 204)),
    (
        "api review",
        "post",
        lambda s: _api(s, 1) + "reviews/",
        {"rating": 2},
        (401, 201, 201, 201),
    ),
    (
        "api edit my review",
        "patch",
        lambda s: _api(s) + "reviews/mine/",
        {"rating": 1},
        (401, 200, 200, 404),
    ),
    (
        "api delete my review",
        "delete",
        lambda s: _api(s) + "reviews/mine/",
        None,
        (401, 204, 204, 404),
    ),
    ("api read entry", "get", _entry, None, (401, 200, 404, 404)),
    ("api edit entry", "patch", _entry, {"title": "Taken"}, (401, 200, 404, 404)),
    (
        "api replace entry",
        "put",
        _entry,
        {"title": "Taken", "content_type": "note"},
        (401, 200, 404, 404),
    ),
    ("api delete entry", "delete", _entry, None, (401, 204, 404, 404)),
    (
        "page edit entry",
        "post",
        lambda s: f"/knowledge/{s.entry.pk}/edit/",
        {"form": {"title": "Taken", "content_type": "note", "body": ""}},
        (302, 302, 404, 404),
    ),
    (
        "page delete entry",
        "post",
        lambda s: f"/knowledge/{s.entry.pk}/delete/",
        {"form": {}},
        (302, 302, 404, 404),
    ),
    (
        "page install",
        "post",
        lambda s: f"/agents/{s.agents[1].slug}/install/",
        {"form": {}},
        (302, 302, 302, 302),
    ),
    (
        "page review delete",
        "post",
        lambda s: f"/agents/{s.agent.slug}/review/delete/",
        {"form": {}},
        (302, 302, 302, 404),
    ),
    ("monitoring snapshot", "get", lambda s: "/api/v1/monitoring/", None, (401, 403, 403, 200)),
]


def _send(client, method, url, body):
    if isinstance(body, dict) and "form" in body:
        return getattr(client, method)(url, body["form"])
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data=body, content_type="application/json")


def _owner_state(seeded) -> dict:
    return {
        "entry": KnowledgeEntry.objects.filter(pk=seeded.entry.pk).values("title").first(),
        "review": Review.objects.filter(user=seeded.owner, agent=seeded.agent)
        .values("rating")
        .first(),
        "installed": Installation.objects.filter(user=seeded.owner, agent=seeded.agent).exists(),
    }


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("write", WRITES, ids=[w[0] for w in WRITES])
def test_write_matrix(seeded, write, who):
    name, method, url, body, expected = write
    client = _clients(seeded)[who]
    before = _owner_state(seeded)
    response = _send(client, method, url(seeded), body)
    assert response.status_code == expected[WHO.index(who)], (name, who, response.content[:300])
    if who in ("other", "staff", "anonymous"):
        # Whatever they were allowed to do, it touched their own rows, never the owner's.
        assert _owner_state(seeded) == before, (name, who)
    if response.status_code == 302 and who == "anonymous":
        assert response["Location"].startswith("/accounts/login/")


# --- Caches never carry one user's data to another ----------------------------------------


def test_warm_caches_serve_no_one_else_s_data(seeded):
    clients = _clients(seeded)
    owner_secret = seeded.entry.title
    shared_paths = [
        "/",
        "/agents/",
        f"/agents/{seeded.agent.slug}/",
        f"/agents/{seeded.agent.slug}/reviews/",
        "/me/agents/",
        "/knowledge/",
        "/api/v1/marketplace/agents/",
        f"/api/v1/agents/{seeded.agent.pk}/",
        "/api/v1/me/installations/",
        "/api/v1/knowledge/entries/",
        f"/api/v1/agents/{seeded.agent.pk}/reviews/mine/",
    ]
    for path in shared_paths:  # the owner warms every cache first, twice
        for _ in range(2):
            assert clients["owner"].get(path).status_code == 200, path
    assert owner_secret in clients["owner"].get("/knowledge/").content.decode()  # the marker
    owner_review = Review.objects.get(user=seeded.owner, agent=seeded.agent)
    for who in ("anonymous", "other", "staff"):
        for path in shared_paths:
            response = clients[who].get(path)
            body = response.content.decode()
            assert owner_secret not in body, (who, path)
            assert f"/knowledge/{seeded.entry.pk}/" not in body, (who, path)
            if path == "/api/v1/knowledge/entries/" and response.status_code == 200:
                ids = {entry["id"] for entry in response.json()["results"]}
                assert seeded.entry.pk not in ids, who
            if response["Content-Type"].startswith("text/html"):
                assert ">owner<" not in body, (who, path)  # the signed-in name in the header
            if path.endswith("reviews/mine/") and response.status_code == 200:
                assert response.json()["id"] != owner_review.pk, who
    # Per-user fields of shared resources are each user's own, not the warmer's.
    detail = f"/api/v1/agents/{seeded.agent.pk}/"
    assert clients["owner"].get(detail).json()["is_installed"] is True
    other_review = Review.objects.get(user=seeded.other, agent=seeded.agent)
    for who, installed, review_id in (
        ("anonymous", None, None),  # not applicable when signed out
        ("staff", False, None),
        ("other", True, other_review.pk),
    ):
        data = clients[who].get(detail).json()
        assert data["is_installed"] is installed, who
        assert (data["my_review"] or {}).get("id") == review_id, who
    page = f"/agents/{seeded.agent.slug}/"
    assert "Uninstall" in clients["owner"].get(page).content.decode()
    for who in ("anonymous", "staff"):
        assert "Uninstall" not in clients[who].get(page).content.decode(), who
    # ... and the other user sees their own things, not a cached copy of nothing.
    mine = clients["other"].get("/knowledge/").content.decode()
    assert seeded.other_entry.title in mine
