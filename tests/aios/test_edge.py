"""The app's side of the edge cache (aios.edge): what anonymous answers tell a shared cache,
and the purges writes send, against a stand-in edge that records them. Both backends; the real
Varnish is in tests/scale/test_edge_varnish.py."""

import http.server
import logging
import threading

import pytest
from prometheus_client import REGISTRY
from rest_framework.authtoken.models import Token

from aios import edge, response_cache
from marketplace import caching
from tests.factories import AgentFactory, UserFactory
from tests.helpers.clock import skip_ahead
from tests.helpers.servers import free_port, wait_for

ACCEPT_JSON = {"HTTP_ACCEPT": "application/json"}


class FakeEdge:
    """An HTTP server on a free port answering PURGE with `status`, recording the keys of
    each request; `drop_idle` closes every connection after its answer without saying so."""

    def __init__(self, port=None, status=200, drop_idle=False):
        self.port = port or free_port()
        self.status = status
        self.drop_idle = drop_idle
        self.purges: list[list[str]] = []
        self.connections = 0
        self.arrived = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                fake.connections += 1

            def do_PURGE(self):
                fake.purges.append(self.headers.get(edge.PURGE_HEADER, "").split())
                self.send_response(fake.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                fake.arrived.set()
                if fake.drop_idle:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def purged(self) -> set[str]:
        return {key for purge in self.purges for key in purge}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_repeats(monkeypatch):
    """Second purges only where a test asks for them: they would land in its counts."""
    monkeypatch.setattr(edge, "REPEAT_SECONDS", 60)


@pytest.fixture
def fake_edge(settings):
    with FakeEdge() as fake:
        settings.EDGE_PURGE_URLS = [fake.url]
        settings.EDGE_PURGE_TIMEOUT = 2.0
        yield fake
    edge.purger().stop()


def _settled(fake: FakeEdge) -> None:
    """What the test's setup purged is out of the way."""
    assert edge.purger().wait_idle(5)
    fake.purges.clear()


def _purges(result: str) -> float:
    return REGISTRY.get_sample_value("aios_edge_purges_total", {"result": result}) or 0.0


def _control(response) -> dict:
    parts = [p.strip() for p in response["Cache-Control"].split(",")]
    return {k: (int(v) if v.isdigit() else v) for k, _, v in (p.partition("=") for p in parts)}


# --- What answers say ------------------------------------------------------------------------


def test_without_an_edge_answers_say_what_they_said_before(settings):
    settings.EDGE_PURGE_URLS = []
    assert edge.shared_headers(["*", "lists"], max_age=60, seconds=30) == [
        ("Cache-Control", "public, max-age=60")
    ]


def test_a_shared_answer_names_its_keys_and_splits_its_lifetime_into_fresh_and_stale(settings):
    settings.EDGE_PURGE_URLS = ["http://edge"]
    headers = dict(edge.shared_headers(["lists", "*", "agent:7"], max_age=60, seconds=40.9))
    assert headers["Cache-Control"] == (
        "public, max-age=60, s-maxage=30, stale-while-revalidate=10"
    )
    assert headers["xkey"] == "* agent:7 lists"
    longest = dict(edge.shared_headers(["lists"], max_age=60, seconds=10_000))
    assert "s-maxage=225, stale-while-revalidate=75" in longest["Cache-Control"]  # MAX_SECONDS


@pytest.mark.parametrize(
    "keys,seconds", [(["lists"], 1.5), (["lists"], -3), ([], 30), (["a b"], 30), (["a,b"], 30)]
)
def test_an_answer_too_short_lived_or_with_unnameable_keys_is_not_for_a_shared_cache(
    settings, keys, seconds
):
    settings.EDGE_PURGE_URLS = ["http://edge"]
    assert edge.shared_headers(keys, max_age=60, seconds=seconds) == [
        ("Cache-Control", "public, max-age=60, s-maxage=0")
    ]


@pytest.mark.django_db
def test_anonymous_copies_carry_their_namespaces_signed_in_ones_stay_private(client, settings):
    settings.EDGE_PURGE_URLS = ["http://127.0.0.1:9"]
    settings.COUNTER_STALENESS = 30
    agent = AgentFactory()
    url = f"/api/v1/agents/{agent.pk}/"
    for response in (client.get(url, **ACCEPT_JSON), client.get(url, **ACCEPT_JSON)):
        control = _control(response)
        assert control["public"] == "" and control["max-age"] == response_cache.BROWSER_MAX_AGE
        # Counters may lag 30 s: fresh plus stale at the edge stay within them.
        assert 0 < control["s-maxage"] + control["stale-while-revalidate"] <= 30
        assert f"agent:{agent.pk}" in response["xkey"].split() and "*" in response["xkey"]
    assert getattr(response, "answered_by_hit_path", False)  # the hit path says the same

    token = Token.objects.create(user=UserFactory()).key
    for _ in range(2):
        signed_in = client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **ACCEPT_JSON)
        assert signed_in["Cache-Control"] == "private, max-age=0, must-revalidate"
        assert "xkey" not in signed_in


@pytest.mark.django_db
def test_with_an_edge_every_answer_to_a_signed_in_browser_says_private(client, settings):
    settings.EDGE_PURGE_URLS = ["http://127.0.0.1:9"]
    agent = AgentFactory()
    client.force_login(UserFactory())
    for path in (f"/agents/{agent.slug}/", "/knowledge/", "/me/agents/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response["Cache-Control"] == edge.PRIVATE, path
        assert "xkey" not in response


@pytest.mark.django_db
def test_an_answer_that_sets_a_cookie_is_never_marked_for_the_edge(client, settings):
    settings.EDGE_PURGE_URLS = ["http://127.0.0.1:9"]
    response = client.get("/accounts/login/")
    assert response.cookies  # the CSRF cookie
    assert "xkey" not in response
    assert "s-maxage" not in response.get("Cache-Control", "")


@pytest.mark.django_db
def test_a_copy_whose_counters_lag_gets_only_what_is_left_of_the_staleness(
    client, settings, monkeypatch
):
    settings.EDGE_PURGE_URLS = ["http://127.0.0.1:9"]
    settings.COUNTER_STALENESS = 30
    agent = AgentFactory()
    url = f"/api/v1/agents/{agent.pk}/"
    client.get(url, **ACCEPT_JSON)
    client.get(url, **ACCEPT_JSON)  # a copy made at t0
    response_cache.bump((), counters=[caching.agent_ns(agent.pk)])  # an install: counters moved
    skip_ahead(monkeypatch, 20)
    control = _control(client.get(url, **ACCEPT_JSON))  # lagging, 20 s into its 30
    assert control["s-maxage"] + control["stale-while-revalidate"] <= 10


@pytest.mark.django_db
def test_without_counter_staleness_the_edge_keeps_a_copy_for_its_ttl(client, settings):
    settings.EDGE_PURGE_URLS = ["http://127.0.0.1:9"]
    settings.COUNTER_STALENESS = 0  # every counter write purges: the TTL is the only bound
    agent = AgentFactory()
    control = _control(client.get(f"/api/v1/agents/{agent.pk}/", **ACCEPT_JSON))
    lifetime = control["s-maxage"] + control["stale-while-revalidate"]
    assert caching.DETAIL_TTL - 2 <= lifetime <= min(caching.DETAIL_TTL, edge.MAX_SECONDS)


# --- Purges ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_write_answers_after_the_edge_purged_what_it_retired(client, fake_edge):
    agent = AgentFactory()
    token = Token.objects.create(user=UserFactory()).key
    _settled(fake_edge)
    response = client.post(
        f"/api/v1/agents/{agent.pk}/reviews/",
        {"rating": 5, "title": "Great", "body": "Works."},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 201
    # Already there when the answer came: the middleware waited for the edge's 200.
    assert f"agent:{agent.pk}" in fake_edge.purged()
    assert not any(key.startswith("user:") for key in fake_edge.purged())  # never at the edge


@pytest.mark.django_db(transaction=True)
def test_counter_moves_purge_nothing_while_counters_may_lag(client, fake_edge, settings):
    settings.COUNTER_STALENESS = 30
    agent, other = AgentFactory(), AgentFactory()
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=UserFactory()).key}"}
    _settled(fake_edge)
    assert client.post(f"/api/v1/agents/{agent.pk}/install/", **auth).status_code == 201
    assert fake_edge.purges == []  # the edge's copies end within COUNTER_STALENESS anyway

    settings.COUNTER_STALENESS = 0
    assert client.post(f"/api/v1/agents/{other.pk}/install/", **auth).status_code == 201
    assert {f"agent:{other.pk}", "lists"} <= fake_edge.purged()


@pytest.mark.django_db(transaction=True)
def test_an_agent_edit_purges_its_pages_and_the_listings(fake_edge):
    agent = AgentFactory()
    _settled(fake_edge)
    agent.name = "Renamed"
    agent.save()  # on commit (autocommit here): caching.forget
    assert edge.purger().wait_idle(5)
    assert {f"agent:{agent.pk}", "lists", "lists:catalog"} <= fake_edge.purged()


def test_every_purge_is_sent_again_for_copies_fetched_while_the_write_committed(
    fake_edge, monkeypatch
):
    monkeypatch.setattr(edge, "REPEAT_SECONDS", 0.05)
    edge.purge(["agent:1", "lists"], everything="*")
    wait_for(lambda: len(fake_edge.purges) >= 2, timeout=5, what="the second purge")
    assert fake_edge.purges == [["agent:1", "lists"], ["agent:1", "lists"]]


def test_keys_asked_for_together_go_in_one_request(fake_edge, monkeypatch):
    purger = edge.purger()
    with purger._cond:  # the thread cannot take anything until all three are queued
        for keys in (["a"], ["b", "a"], ["c"]):
            purger.add(keys, everything="*")
    assert purger.wait_idle(5)
    assert fake_edge.purges[0] == ["a", "b", "c"]


def test_an_edge_down_costs_the_write_nothing_and_gets_its_purges_when_back(
    settings, monkeypatch, caplog
):
    monkeypatch.setattr(edge, "BACKOFF_SECONDS", (0.05,))
    port = free_port()  # nothing listens here yet
    settings.EDGE_PURGE_URLS = [f"http://127.0.0.1:{port}"]
    failed = _purges("failed")
    with caplog.at_level(logging.WARNING, logger="aios.edge"):
        edge.purge(["agent:3"], everything="*")
        edge.wait_for_purges()  # what a write's request does: returns on the failure
        purger = edge.purger()
        assert purger.edges[0].failures >= 1
        # While it fails, a request does not wait for it at all.
        assert purger.wait_confirmed(purger.add(["agent:4"], everything="*"), timeout=0)
    assert _purges("failed") > failed
    assert "did not purge" in caplog.text
    with FakeEdge(port=port) as back:
        assert back.arrived.wait(5)
        assert purger.wait_idle(5)
        assert {"agent:3", "agent:4"} <= back.purged()
    purger.stop()


def test_a_refusing_edge_is_a_failure_too(settings, monkeypatch):
    monkeypatch.setattr(edge, "BACKOFF_SECONDS", (60,))
    with FakeEdge(status=403) as refusing:
        settings.EDGE_PURGE_URLS = [refusing.url]
        failed = _purges("failed")
        edge.purge(["lists"], everything="*")
        edge.wait_for_purges()
        assert refusing.purges == [["lists"]]
        assert _purges("failed") == failed + 1
    edge.purger().stop()


def test_purges_left_undelivered_longer_than_the_edge_keeps_a_copy_are_dropped(
    settings, monkeypatch
):
    monkeypatch.setattr(edge, "BACKOFF_SECONDS", (0.02,))
    monkeypatch.setattr(edge, "MAX_SECONDS", 0.1)
    settings.EDGE_PURGE_URLS = [f"http://127.0.0.1:{free_port()}"]
    before = REGISTRY.get_sample_value("aios_edge_purge_dropped_keys_total") or 0.0

    def dropped():
        return (REGISTRY.get_sample_value("aios_edge_purge_dropped_keys_total") or 0) - before

    edge.purge(["agent:5", "lists"], everything="*")
    purger = edge.purger()
    wait_for(lambda: dropped() == 2, timeout=5, what="the keys to be given up")
    assert purger.edges[0].queue == {}
    purger.stop()


def test_too_many_waiting_keys_become_one_purge_of_everything(settings, monkeypatch):
    monkeypatch.setattr(edge, "MAX_PENDING", 3)
    monkeypatch.setattr(edge, "BACKOFF_SECONDS", (60,))
    port = free_port()
    settings.EDGE_PURGE_URLS = [f"http://127.0.0.1:{port}"]
    edge.purge(["a"], everything="*")
    edge.wait_for_purges()  # returns once it failed
    purger = edge.purger()
    assert purger.edges[0].failures == 1
    edge.purge(["b", "c", "d", "e"], everything="*")
    assert set(purger.edges[0].queue) == {"*"}
    purger.stop()


def test_an_idle_connection_the_edge_closed_is_reopened_not_counted_as_a_failure(settings):
    with FakeEdge(drop_idle=True) as fake:
        settings.EDGE_PURGE_URLS = [fake.url]
        failed = _purges("failed")
        for key in ("a", "b", "c"):
            edge.purge([key], everything="*")
            edge.wait_for_purges()
        assert fake.purges == [["a"], ["b"], ["c"]]
        assert _purges("failed") == failed
        assert fake.connections == 3
    edge.purger().stop()


def test_no_edge_no_thread(settings):
    settings.EDGE_PURGE_URLS = []
    before = {t.name for t in threading.enumerate()}
    response_cache.bump(["lists"])
    edge.wait_for_purges()
    assert "edge-purge" not in {t.name for t in threading.enumerate()} - before
