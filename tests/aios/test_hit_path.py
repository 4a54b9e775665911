"""The WSGI hit path (aios.response_cache.HitPath) on the site's real URLs: what it answers,
and that it keeps every guarantee Django's middleware gave a cached answer.

Every test client goes through the hit path (tests/hitpath.py); `answered_by_hit_path`
tells a response it made from one Django made. Runs on real Redis and on the file cache.
"""

import gzip
import threading

import brotli
import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY
from rest_framework.authtoken.models import Token

from aios import redis_ha, response_cache
from tests.factories import AgentFactory, UserFactory
from tests.helpers.clients import token_client
from tests.helpers.clock import skip_ahead

pytestmark = pytest.mark.django_db


LIST = "/api/v1/marketplace/agents/"
SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
    "Content-Security-Policy",
)


def by_hit_path(response) -> bool:
    return getattr(response, "answered_by_hit_path", False)


@pytest.fixture
def agents(cache_backend):
    return AgentFactory.create_batch(12)


def warm(client, url, **extra):
    miss = client.get(url, **extra)
    assert miss.status_code == 200
    assert not by_hit_path(miss)
    return miss


def test_a_warm_copy_is_answered_in_front_of_django_with_the_miss_headers(agents):
    client = Client()
    miss = warm(client, LIST)
    with CaptureQueriesContext(connection) as queries:
        hit = client.get(LIST)
    assert by_hit_path(hit)
    assert len(queries) == 0
    assert hit.content == miss.content
    for header in (*SECURITY_HEADERS, "Content-Type", "Vary", "ETag", "Cache-Control"):
        assert hit[header] == miss[header], header
    assert len(hit["X-Request-ID"]) == 32
    assert hit["X-Request-ID"] != miss["X-Request-ID"]
    sent = client.get(LIST, HTTP_X_REQUEST_ID="trace-1234-abcd")
    assert by_hit_path(sent) and sent["X-Request-ID"] == "trace-1234-abcd"


def test_pages_keep_their_security_headers_on_the_hit_path(agents):
    client = Client()
    miss = warm(client, "/agents/")
    hit = client.get("/agents/")
    assert by_hit_path(hit)
    for header in SECURITY_HEADERS:
        assert hit[header] == miss[header], header


def test_the_stored_encoding_the_client_accepts_is_sent(agents):
    client = Client()
    warm(client, LIST)
    plain = client.get(LIST).content
    br = client.get(LIST, HTTP_ACCEPT_ENCODING="gzip, br")
    assert by_hit_path(br) and br["Content-Encoding"] == "br"
    assert brotli.decompress(br.content) == plain
    gz = client.get(LIST, HTTP_ACCEPT_ENCODING="gzip")
    assert gz["Content-Encoding"] == "gzip" and gzip.decompress(gz.content) == plain
    assert "Accept-Encoding" in br["Vary"]
    assert br["ETag"] != gz["ETag"]


def test_conditional_get_is_a_304_from_the_hit_path(agents):
    client = Client()
    etag = warm(client, LIST)["ETag"]
    response = client.get(LIST, HTTP_IF_NONE_MATCH=etag)
    assert by_hit_path(response)
    assert response.status_code == 304
    assert response.content == b""


def test_head_gets_the_headers_and_no_body(agents):
    client = Client()
    miss = warm(client, LIST)
    response = client.head(LIST)
    assert by_hit_path(response)
    assert response.content == b""
    assert response["Content-Length"] == str(len(miss.content))


def test_an_unknown_host_never_reads_a_copy(agents):
    client = Client()
    warm(client, LIST)
    response = client.get(LIST, HTTP_HOST="evil.example")
    assert not by_hit_path(response)
    assert response.status_code == 400


def test_plain_http_is_redirected_and_https_copies_carry_hsts(agents, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    client = Client()
    warm(client, LIST, secure=True)
    hit = client.get(LIST, secure=True)
    assert by_hit_path(hit)
    assert hit["Strict-Transport-Security"].startswith("max-age=3600")
    plain = client.get(LIST)
    assert not by_hit_path(plain)
    assert plain.status_code == 301


def test_a_client_past_the_hit_budget_goes_through_django(agents, settings, monkeypatch):
    settings.RESPONSE_CACHE_HIT_RATE = 3
    # The hit budget's clock is private (no public seam): one second throughout.
    monkeypatch.setattr(response_cache, "_clock", lambda: 1000.5)
    client = Client()
    warm(client, LIST)  # the first look-up of the second
    answered = [by_hit_path(client.get(LIST)) for _ in range(4)]
    assert answered == [True, True, False, False]
    over = client.get(LIST)
    assert over.status_code == 200  # Django answers (its throttles count it)
    assert by_hit_path(client.get(LIST, REMOTE_ADDR="10.1.2.3"))  # another client's budget
    monkeypatch.setattr(response_cache, "_clock", lambda: 1001.5)
    assert by_hit_path(client.get(LIST))  # the next second


def test_a_revoked_token_never_reads_a_shared_copy(agents, django_capture_on_commit_callbacks):
    user = UserFactory()
    token = Token.objects.create(user=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for _ in range(3):  # learn whose credential it is, then vouch
        client.get(LIST)
    assert by_hit_path(client.get(LIST))
    with django_capture_on_commit_callbacks(execute=True):
        token.delete()
    response = client.get(LIST)
    assert not by_hit_path(response)
    assert response.status_code == 401


def test_a_signed_in_copy_is_only_ever_its_own_credentials(agents):
    clients = {name: token_client(UserFactory(username=name)) for name in ("alice", "bob")}
    url = "/api/v1/me/installations/"
    for _ in range(3):
        clients["alice"].get(url)
    assert by_hit_path(clients["alice"].get(url))
    first_bob = clients["bob"].get(url)
    assert not by_hit_path(first_bob)
    anonymous = Client().get(url)
    assert anonymous.status_code == 401 and not by_hit_path(anonymous)


def test_hits_are_counted_in_the_metrics(agents):
    client = Client()
    warm(client, LIST)

    def hits():
        labels = {"namespace": "lists", "result": "hit"}
        return REGISTRY.get_sample_value("aios_cache_requests_total", labels) or 0

    before = hits()
    assert by_hit_path(client.get(LIST))
    assert hits() == before + 1


def test_hits_count_as_requests_of_their_view_in_the_monitoring(agents, monkeypatch):
    from aios.monitoring import metrics

    client = Client()
    warm(client, LIST)
    seen = []
    monkeypatch.setattr(metrics, "observe_request", lambda **kwargs: seen.append(kwargs))
    assert by_hit_path(client.get(LIST))
    assert len(seen) == 1
    assert seen[0]["view"] == "api:agent-list" and seen[0]["status"] == 200


def test_a_copy_past_its_counter_staleness_goes_to_django_which_recomputes_once(
    agents, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from marketplace import services

    settings.COUNTER_STALENESS = 30
    client = Client()
    warm(client, LIST)
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=UserFactory(), agent=agents[0])
    lagging = client.get(LIST)
    assert by_hit_path(lagging)  # within the bound: still the copy
    skip_ahead(monkeypatch, 31)
    refreshed = client.get(LIST)
    assert not by_hit_path(refreshed)  # Django recomputed it (under the lock)
    assert by_hit_path(client.get(LIST))
    counts = {row["id"]: row["install_count"] for row in client.get(LIST).json()["results"]}
    assert counts[agents[0].pk] == 1


# --- The near copy (Redis client tracking) -------------------------------------------------


@pytest.fixture
def redis_agents(db):
    return AgentFactory.create_batch(12)


def near():
    return response_cache.store().near


@pytest.mark.redis
def test_a_hot_hit_needs_no_redis_round_trip(redis_agents, monkeypatch):
    if near() is None:
        pytest.skip("near copy switched off (RESPONSE_CACHE_NEAR_BYTES=0)")
    client = Client()
    warm(client, LIST)
    assert by_hit_path(client.get(LIST))  # fills the near copy
    calls = []
    real = redis.Redis.mget
    monkeypatch.setattr(
        redis.Redis, "mget", lambda self, *a, **k: calls.append(a) or real(self, *a, **k)
    )
    assert by_hit_path(client.get(LIST))
    assert calls == []


@pytest.mark.redis
def test_another_process_write_is_seen_by_the_next_read(redis_agents):
    """A version bumped by another connection (another worker) retires the near copy at
    once: the next read drains the invalidation before it answers."""
    if near() is None:
        pytest.skip("near copy switched off")
    client = Client()
    warm(client, LIST)
    assert by_hit_path(client.get(LIST))
    backend = caches["default"]
    other = redis.Redis.from_url(settings.REDIS_URL)
    other.set(backend.make_key("rc:v:lists"), str(response_cache.new_version()))
    response = client.get(LIST)
    assert not by_hit_path(response)  # the copy named the old version: recomputed


@pytest.mark.redis
def test_the_near_copy_never_keeps_a_value_older_than_redis_under_concurrent_writes():
    """Readers in threads race a writer on another connection: whatever a reader gets was
    current in Redis when its read began, never an older value kept in memory."""
    if near() is None:
        pytest.skip("near copy switched off")
    backend = caches["default"]
    key = "rc:v:race"
    raw = backend.make_key(key)
    writer = redis.Redis.from_url(settings.REDIS_URL)
    writer.set(raw, "0")
    store = response_cache.store()
    stop = threading.Event()
    errors = []
    latest = [0]

    def write():
        for n in range(1, 2000):
            writer.set(raw, str(n))
            latest[0] = n
        stop.set()

    def read():
        while not stop.is_set():
            floor = latest[0]  # written and acknowledged before this read began
            value = store.get_many([key]).get(key)
            if value is None or value < floor:
                errors.append((floor, value))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    write()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.get_many([key])[key] == 1999


@pytest.mark.redis
def test_a_flush_empties_the_near_copy(redis_agents):
    if near() is None:
        pytest.skip("near copy switched off")
    client = Client()
    warm(client, LIST)
    assert by_hit_path(client.get(LIST))
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    assert not by_hit_path(client.get(LIST))


@pytest.mark.redis
def test_a_new_redis_master_empties_the_near_copy_and_drops_reads_in_flight(
    redis_agents, monkeypatch
):
    """Its invalidations came from the old master (aios/redis_ha.py): nothing kept is
    trusted, even while the old connection still looks alive."""
    if near() is None:
        pytest.skip("near copy switched off")
    client = Client()
    warm(client, LIST)
    assert by_hit_path(client.get(LIST))
    copy = near()
    assert copy.stats()["keys"] > 0 and copy.active
    assert copy.begin_fill()  # a read that began before the switch ...
    monkeypatch.setattr(redis_ha, "_generation", redis_ha.generation() + 1)
    copy.end_fill({b"some-key": 1})  # ... keeps nothing it read
    assert copy.get(b"some-key") == (False, None)
    try:
        assert by_hit_path(client.get(LIST))  # from Redis: the copy there is still valid
        assert copy.stats()["keys"] == 0
        assert not copy.active
    finally:
        response_cache.store().reset_near()  # the next test gets a connected one at once


def test_an_install_keeps_the_writers_knowledge_warm_and_refreshes_their_installations(
    agents, django_capture_on_commit_callbacks
):
    client = token_client(UserFactory())
    for url in ("/api/v1/knowledge/entries/", "/api/v1/me/installations/"):
        for _ in range(3):
            client.get(url)
        assert by_hit_path(client.get(url))
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/agents/{agents[0].pk}/install/").status_code == 201
    assert by_hit_path(client.get("/api/v1/knowledge/entries/"))  # installs show nowhere there
    mine = client.get("/api/v1/me/installations/")
    assert not by_hit_path(mine)
    assert [row["agent"]["id"] for row in mine.json()["results"]] == [agents[0].pk]
