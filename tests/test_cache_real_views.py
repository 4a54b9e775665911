"""The response cache around the real API views (issue 3), wired here as the lead will wire
them: found by their public URLs, wrapped with `cached_response`, the rest of the site
included unchanged so `reverse()` and pagination links work.
"""

import pytest
from django.test import Client, override_settings
from django.urls import include, path, resolve
from rest_framework.authtoken.models import Token

from marketplace import caching, services
from marketplace.caching import cached_response
from tests.factories import AgentFactory, UserFactory

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def real(url: str):
    return resolve(url, urlconf="aios.urls").func


urlpatterns = [
    path(
        "api/v1/marketplace/agents/",
        cached_response("lists", ttl=caching.LISTS_TTL)(real("/api/v1/marketplace/agents/")),
    ),
    path(
        "api/v1/marketplace/stats/",
        cached_response("lists", ttl=caching.STATS_TTL)(real("/api/v1/marketplace/stats/")),
    ),
    path(
        "api/v1/agents/<int:pk>/",
        cached_response("agent:{pk}", ttl=caching.DETAIL_TTL, per_user=True)(
            real("/api/v1/agents/1/")
        ),
    ),
    path(
        "api/v1/me/installations/",
        cached_response("user", ttl=caching.USER_TTL, per_user=True)(
            real("/api/v1/me/installations/")
        ),
    ),
    path("", cached_response("lists", ttl=caching.LISTS_TTL, per_user=True)(real("/"))),
    path("", include("aios.urls")),
]


def as_user(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def uncached(client, url):
    with override_settings(CACHE_ENABLED=False):
        return client.get(url)


@pytest.fixture
def agents(db):
    return AgentFactory.create_batch(5)


def test_real_listing_hit_runs_no_query_and_keeps_links(client, agents, django_assert_num_queries):
    url = "/api/v1/marketplace/agents/?page_size=2"
    miss = client.get(url)
    assert miss.status_code == 200
    with django_assert_num_queries(0):
        hit = client.get(url)
    assert hit.json() == miss.json() == uncached(client, url).json()
    assert hit["Link"] == miss["Link"]
    assert 'rel="next"' in hit["Link"]
    assert hit["Cache-Control"].startswith("public")


def test_real_detail_is_per_user_and_fresh_after_install(
    client, agents, django_assert_num_queries, django_capture_on_commit_callbacks
):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    as_alice, as_bob = as_user(alice), as_user(bob)
    agent = agents[0]
    url = f"/api/v1/agents/{agent.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=alice, agent=agent)
    for c in (as_alice, as_bob, client, as_alice, as_bob, client):
        assert c.get(url).status_code == 200
    with django_assert_num_queries(0):
        views = {name: c.get(url).json() for name, c in [("a", as_alice), ("b", as_bob)]}
        views["anonymous"] = client.get(url).json()
    assert views["a"]["is_installed"] is True
    assert views["b"]["is_installed"] is False
    for name, c in [("a", as_alice), ("b", as_bob), ("anonymous", client)]:
        assert views[name] == uncached(c, url).json()
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=bob, agent=agent)
    fresh = as_bob.get(url).json()
    assert fresh["is_installed"] is True
    assert fresh["install_count"] == 2
    assert client.get(url).json()["install_count"] == 2


def test_real_installations_and_stats_are_fresh_after_install(
    client, agents, django_capture_on_commit_callbacks
):
    alice = UserFactory(username="alice")
    as_alice = as_user(alice)
    for _ in range(3):
        as_alice.get("/api/v1/me/installations/")
        client.get("/api/v1/marketplace/stats/")
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=alice, agent=agents[3])
    for c, url in [(as_alice, "/api/v1/me/installations/"), (client, "/api/v1/marketplace/stats/")]:
        assert c.get(url).json() == uncached(c, url).json()
    assert len(as_alice.get("/api/v1/me/installations/").json()["results"]) == 1


def test_real_home_page_is_shared_by_visitors_and_private_to_each_user(
    client, agents, django_assert_num_queries
):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    as_alice, as_bob = Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    for _ in range(3):
        pages = {name: c.get("/") for name, c in [("a", as_alice), ("b", as_bob), ("v", client)]}
        assert all(page.status_code == 200 for page in pages.values())
    with django_assert_num_queries(0):
        pages = {name: c.get("/") for name, c in [("a", as_alice), ("b", as_bob), ("v", client)]}
    text = {name: page.content.decode() for name, page in pages.items()}
    assert "alice" in text["a"] and "bob" not in text["a"]
    assert "bob" in text["b"] and "alice" not in text["b"]
    assert "alice" not in text["v"] and "bob" not in text["v"]
    assert pages["v"]["Cache-Control"].startswith("public")
    assert pages["a"]["Cache-Control"].startswith("private")
