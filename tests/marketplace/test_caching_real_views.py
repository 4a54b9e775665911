"""The response cache on the site's real URLs (aios.urls): every cached read costs no query
when warm, users and visitors never get each other's copies (API by token and by session,
pages), and the HTTP headers say who may keep what.

Runs on real Redis (`redis`, as in CI) and on the file cache (the embedded default).
"""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from aios import response_cache
from marketplace import caching, services
from tests.factories import AgentFactory, KnowledgeEntryFactory, UserFactory
from tests.helpers.cached_reads import READS, UNCACHED_READS, World, content, truth
from tests.helpers.clients import session_client, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cache_backend, django_capture_on_commit_callbacks):
    """The matrix's world with every read answering 200: installed, reviewed, noted."""
    w = World()
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=w.writer, agent=w.agent)
        services.create_review(user=w.writer, agent=w.agent, rating=4, title="Good")
    return w


CACHED_READS = [read for read in READS if read not in UNCACHED_READS]


@pytest.mark.parametrize(
    ("name", "template"), CACHED_READS, ids=[f"{n} {u}" for n, u in CACHED_READS]
)
def test_every_cached_read_costs_no_query_when_warm(
    world, name, template, django_assert_num_queries
):
    url = template.format(a=world.agent.pk, e=world.entry.pk, slug=world.agent.slug)
    client = world.client(name)
    for _ in range(3):  # a signed-in page: new CSRF cookie, then whose copy, then stored
        assert client.get(url).status_code == 200
    with django_assert_num_queries(0):
        hit = client.get(url)
    assert hit.status_code == 200
    assert content(hit) == truth(client, url)


@pytest.mark.parametrize(
    ("name", "template"), UNCACHED_READS, ids=[f"{n} {u}" for n, u in UNCACHED_READS]
)
def test_a_signed_in_agent_detail_is_read_fresh_every_time(world, name, template):
    url = template.format(a=world.agent.pk)
    client = world.client(name)
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        statements = [query["sql"] for query in queries.captured_queries]
        assert response.status_code == 200
        assert any("marketplace_agents" in sql for sql in statements)  # the view ran
        assert content(response) == truth(client, url)


def test_a_warm_conditional_get_is_a_304_without_a_query(world, django_assert_num_queries):
    url = "/api/v1/marketplace/agents/"
    etag = world.anon.get(url)["ETag"]
    with django_assert_num_queries(0):
        response = world.anon.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


# --- Isolation ---------------------------------------------------------------------------------


class People:
    """alice and bob with different installs, reviews and private notes; a visitor."""

    def __init__(self):
        self.alpha = AgentFactory(name="Alpha", slug="alpha")
        self.beta = AgentFactory(name="Beta", slug="beta")
        self.alice = UserFactory(username="alice")
        self.bob = UserFactory(username="bob")
        services.install_agent(user=self.alice, agent=self.alpha)
        services.install_agent(user=self.bob, agent=self.beta)
        services.create_review(user=self.alice, agent=self.alpha, rating=5)
        self.notes = {
            "alice": KnowledgeEntryFactory(user=self.alice, title="alice-private-note"),
            "bob": KnowledgeEntryFactory(user=self.bob, title="bob-private-note"),
        }

    def clients(self, how: str) -> dict[str, Client]:
        made = {"visitor": Client()}
        signed_in = token_client if how == "token" else session_client
        for user in (self.alice, self.bob):
            made[user.username] = signed_in(user)
        return made


API_READS = [
    "/api/v1/marketplace/agents/",
    "/api/v1/agents/{alpha}/",
    "/api/v1/agents/{beta}/",
    "/api/v1/agents/{alpha}/reviews/mine/",
    "/api/v1/me/installations/",
    "/api/v1/knowledge/entries/",
]
PAGE_READS = ["/", "/agents/", "/search/?q=alpha", "/stats/", "/agents/alpha/", "/me/agents/"]
PAGE_READS += ["/knowledge/"]


def _read_everything(clients, urls, rounds):
    seen = {}
    for _ in range(rounds):
        for who, client in clients.items():
            for url in urls:
                seen[(who, url)] = client.get(url)
    return seen


@pytest.mark.parametrize("how", ["token", "session"])
def test_api_copies_are_never_anyone_elses_on_warm_caches(cache_backend, how):
    p = People()
    clients = p.clients(how)
    urls = [u.format(alpha=p.alpha.pk, beta=p.beta.pk) for u in API_READS]
    _read_everything(clients, urls, rounds=3)  # warm every copy of everyone
    seen = _read_everything(clients, urls, rounds=1)
    for (who, url), response in seen.items():
        assert content(response) == truth(clients[who], url), (who, url)
    detail = f"/api/v1/agents/{p.alpha.pk}/"
    assert seen[("alice", detail)].json()["is_installed"] is True
    assert seen[("bob", detail)].json()["is_installed"] is False
    assert seen[("visitor", detail)].json()["is_installed"] is None
    assert seen[("alice", detail)].json()["my_review"]["rating"] == 5
    assert seen[("bob", detail)].json()["my_review"] is None
    mine = "/api/v1/me/installations/"
    assert [i["agent"]["slug"] for i in seen[("alice", mine)].json()["results"]] == ["alpha"]
    assert [i["agent"]["slug"] for i in seen[("bob", mine)].json()["results"]] == ["beta"]
    assert seen[("visitor", mine)].status_code == 401
    notes = "/api/v1/knowledge/entries/"
    assert [e["title"] for e in seen[("alice", notes)].json()["results"]] == ["alice-private-note"]
    assert [e["title"] for e in seen[("bob", notes)].json()["results"]] == ["bob-private-note"]
    assert seen[("bob", f"/api/v1/agents/{p.alpha.pk}/reviews/mine/")].status_code == 404


def test_pages_are_never_anyone_elses_and_signed_in_ones_are_never_shared(cache_backend):
    p = People()
    clients = p.clients("session")
    _read_everything(clients, PAGE_READS, rounds=4)
    seen = _read_everything(clients, PAGE_READS, rounds=1)
    for (who, url), response in seen.items():
        assert content(response) == truth(clients[who], url), (who, url)
        html = response.content.decode()
        if who == "visitor":
            if response.status_code == 200:
                assert "csrfmiddlewaretoken" not in html, url
                assert "Log out" not in html, url
                assert response["Cache-Control"].startswith("public"), url
            continue
        other = "bob" if who == "alice" else "alice"
        assert response.status_code == 200, (who, url)
        assert "csrfmiddlewaretoken" in html and "Log out" in html, (who, url)
        assert f">{who}</a>" in html, (who, url)  # the header names its own user only
        assert f">{other}</a>" not in html, (who, url)
        assert f"{other}-private-note" not in html, (who, url)
        assert response["Cache-Control"] == "private, max-age=0, must-revalidate", (who, url)
    assert "alice-private-note" in seen[("alice", "/knowledge/")].content.decode()
    assert "bob-private-note" in seen[("bob", "/knowledge/")].content.decode()
    assert seen[("visitor", "/me/agents/")].status_code == 302  # to the login page


def test_responses_vary_on_credentials_and_api_ones_on_accept(world):
    for _ in range(3):
        api = world.api.get("/api/v1/marketplace/agents/")
        page = world.anon.get("/agents/")
    assert {"Cookie", "Authorization", "Accept"} <= {v.strip() for v in api["Vary"].split(",")}
    assert {"Cookie", "Authorization"} <= {v.strip() for v in page["Vary"].split(",")}
    assert page["Cache-Control"] == f"public, max-age={response_cache.BROWSER_MAX_AGE}"
    assert api["Cache-Control"] == "private, max-age=0, must-revalidate"


# --- Credentials that stop working ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/marketplace/agents/", "/api/v1/marketplace/stats/"])
def test_a_revoked_token_gets_401_not_the_warm_shared_copy(
    world, url, django_capture_on_commit_callbacks
):
    for _ in range(3):
        assert world.api.get(url).status_code == 200
        assert world.anon.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        Token.objects.filter(user=world.writer).delete()
    assert world.api.get(url).status_code == 401
    assert world.anon.get(url).status_code == 200


def test_an_unknown_token_never_reads_a_shared_copy(world):
    url = "/api/v1/marketplace/agents/"
    for _ in range(3):
        world.anon.get(url)
    forged = Client(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert [forged.get(url).status_code for _ in range(3)] == [401, 401, 401]


def test_a_deactivated_user_is_signed_out_of_every_warm_copy(
    world, django_capture_on_commit_callbacks
):
    reads = [("api", "/api/v1/marketplace/agents/"), ("api", "/api/v1/me/installations/")]
    reads += [("web", "/me/agents/"), ("web", "/")]
    for _ in range(4):
        for name, url in reads:
            assert world.client(name).get(url).status_code == 200
    world.writer.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        world.writer.save()
    assert world.api.get("/api/v1/marketplace/agents/").status_code == 401
    assert world.api.get("/api/v1/me/installations/").status_code == 401
    assert world.web.get("/me/agents/").status_code == 302
    assert "Log out" not in world.web.get("/").content.decode()


# --- No stampede on a real listing -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cold_real_listing_is_computed_once_under_concurrent_requests(cache_backend):
    AgentFactory.create_batch(5)
    url = "/api/v1/marketplace/agents/?page_size=3"
    caching.forget_all()  # cold, as right after a write
    caching.forget()
    misses = response_cache.response_cache_stats().get(("lists", "miss"), 0)
    start, bodies, errors = threading.Barrier(8), [], []

    def fetch():
        try:
            start.wait()
            response = Client().get(url)
            assert response.status_code == 200
            bodies.append(response.content)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert response_cache.response_cache_stats()[("lists", "miss")] - misses == 1
    assert len(bodies) == 8 and len(set(bodies)) == 1
