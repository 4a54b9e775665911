"""Redis unreachable, slow or lost mid-run never causes a 5xx, and caching comes back by itself.

These tests point the cache at Redis servers they control: a closed port, a socket that
never answers, and a `redis-server` started on a free port and killed or paused (never the
shared server, whose state other runs rely on).
"""

import logging
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest
import redis
from django.http import JsonResponse
from django.urls import path

from aios import cache as resilient
from aios import response_cache
from aios.cache import CacheUnavailable, ResilientRedisCache
from aios.response_cache import CachePolicy
from marketplace import caching, services
from marketplace.models import Agent
from tests.factories import AgentFactory, UserFactory

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]

CALLS: Counter = Counter()
BREAKER_SECONDS = 0.3


@CachePolicy("lists", ttl=caching.LISTS_TTL)
def agent_list(request):
    CALLS["list"] += 1
    rows = Agent.objects.listed().ordered("-installs").values_list("slug", "install_count")
    return JsonResponse({"results": [list(row) for row in rows]})


urlpatterns = [path("agents/", agent_list)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cache_settings(port: int, *, breaker: float = BREAKER_SECONDS, timeout: float = 0.25):
    return {
        "default": {
            "BACKEND": "aios.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": "aios-test",
            "OPTIONS": {
                "PARSER_CLASS": "redis.connection._HiredisParser",
                "SOCKET_CONNECT_TIMEOUT": timeout,
                "SOCKET_TIMEOUT": timeout,
                "CIRCUIT_BREAKER_SECONDS": breaker,
                "FAILURE_LOG_INTERVAL": 60,
            },
        }
    }


class RedisServer:
    """A throwaway redis-server of this test's own, without persistence."""

    def __init__(self, port: int):
        self.port = port
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause_clients(self, milliseconds: int):
        redis.Redis(port=self.port).execute_command("CLIENT", "PAUSE", milliseconds, "ALL")


needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server binary"
)


@pytest.fixture(autouse=True)
def _fresh_state():
    CALLS.clear()
    resilient.reset_breakers()
    # No public reset: a lost bump is replayed only once the cache answers again.
    response_cache._lost_bump = False
    yield
    resilient.reset_breakers()
    response_cache._lost_bump = False


@pytest.fixture
def agents(db):
    return AgentFactory.create_batch(3)


@pytest.fixture
def server():
    server = RedisServer(free_port())
    yield server
    server.kill()


def breaker():
    from django.core.cache import cache

    return cache.breaker


def counted(counter) -> float:
    """One of the cache's Prometheus counters, summed over its operations, as /metrics has it."""
    return sum(s.value for f in counter.collect() for s in f.samples if s.name.endswith("_total"))


def get_ok(client, url="/agents/"):
    response = client.get(url)
    assert response.status_code == 200
    return response


def assert_served_from_redis_again(client):
    """Once Redis is back: one more miss stores the copy, then Redis answers."""
    eventually(lambda: redis_back(client))
    calls = CALLS["list"]
    for _ in range(3):
        get_ok(client)
    assert CALLS["list"] <= calls + 1


def redis_back(client) -> bool:
    """One request (always answered), then whether the cache is in use again."""
    get_ok(client)
    return not breaker().is_down


def eventually(condition, *, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --- The backend alone -----------------------------------------------------------------------


def test_unreachable_backend_answers_like_an_empty_cache(settings):
    settings.CACHES = cache_settings(free_port())
    from django.core.cache import cache, caches

    assert cache.get("k", "default") == "default"
    assert cache.get_many(["a", "b"]) == {}
    assert cache.set("k", 1) is False
    assert cache.add("k", 1) is False
    assert cache.delete("k") is False
    assert cache.get_or_set("k", 5) == 5
    assert set(cache.set_many({"a": 1, "b": 2})) == {"a", "b"}
    with pytest.raises(CacheUnavailable):
        cache.incr("k")
    with pytest.raises(ValueError):  # callers that ignore a missing key keep working
        cache.decr("k")
    assert cache.is_available() is False
    assert isinstance(caches["default"], ResilientRedisCache)


def test_a_flapping_redis_is_logged_once_per_interval(caplog):
    caplog.set_level(logging.WARNING, logger="aios.cache")
    breaker = resilient.CircuitBreaker("test", open_seconds=0, log_interval=60)
    errors = counted(resilient.backend_errors)
    for _ in range(5):  # down, up, down, up, ...
        breaker.record_failure("get", ConnectionError("refused"))
        assert breaker.allow()
        breaker.record_success()
    messages = [r.getMessage() for r in caplog.records if r.name == "aios.cache"]
    assert len(messages) == 2
    assert "unavailable" in messages[0] and "reachable again" in messages[1]
    assert counted(resilient.backend_errors) - errors == 5
    assert not breaker.is_down


# --- Redis down at start ---------------------------------------------------------------------


def test_redis_unreachable_at_start_serves_from_the_database(settings, client, agents, caplog):
    settings.CACHES = cache_settings(free_port(), breaker=60)
    caplog.set_level(logging.WARNING, logger="aios.cache")
    errors, skipped = counted(resilient.backend_errors), counted(resilient.backend_skipped)
    for _ in range(5):
        get_ok(client)
    assert CALLS["list"] == 5
    # The breaker opened: later requests did not try Redis.
    assert counted(resilient.backend_errors) - errors == 1
    assert counted(resilient.backend_skipped) > skipped
    warnings = [r for r in caplog.records if r.name == "aios.cache"]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()


def test_a_slow_redis_costs_one_timeout_not_one_per_request(settings, client, agents):
    accepted = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept():  # takes connections and never answers
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    settings.CACHES = cache_settings(listener.getsockname()[1], breaker=60, timeout=0.1)
    errors = counted(resilient.backend_errors)
    try:
        for _ in range(10):
            get_ok(client)
        assert counted(resilient.backend_errors) - errors == 1
        assert len(accepted) == 1
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


@needs_redis_server
@pytest.mark.redis
def test_caching_resumes_once_redis_comes_up(settings, client, agents, server, caplog):
    settings.CACHES = cache_settings(server.port)
    caplog.set_level(logging.WARNING, logger="aios.cache")
    get_ok(client)
    get_ok(client)
    assert CALLS["list"] == 2
    server.start()

    assert_served_from_redis_again(client)
    assert any("reachable again" in r.getMessage() for r in caplog.records)


# --- Redis lost mid-run ----------------------------------------------------------------------


@needs_redis_server
@pytest.mark.redis
def test_redis_killed_mid_run_then_restarted(settings, client, agents, server):
    server.start()
    settings.CACHES = cache_settings(server.port)
    get_ok(client)
    get_ok(client)
    assert CALLS["list"] == 1
    server.kill()
    errors = counted(resilient.backend_errors)
    for _ in range(5):
        get_ok(client)  # no 5xx: straight to the database
    assert CALLS["list"] == 6
    assert counted(resilient.backend_errors) > errors
    server.start()
    assert_served_from_redis_again(client)


@needs_redis_server
@pytest.mark.redis
def test_an_invalidation_lost_while_redis_stalled_is_replayed(
    settings, client, agents, server, django_capture_on_commit_callbacks
):
    """Redis keeps its data through the stall: without the replay the copy would be stale."""
    server.start()
    settings.CACHES = cache_settings(server.port, timeout=0.1)
    assert get_ok(client).json()["results"][0][1] == 0
    get_ok(client)
    assert CALLS["list"] == 1
    server.pause_clients(600)
    with django_capture_on_commit_callbacks(execute=True):
        services.install_agent(user=UserFactory(), agent=agents[0])
    assert response_cache.lost_bump_pending() is True
    assert get_ok(client).json()["results"][0] == [agents[0].slug, 1]  # from the database
    time.sleep(0.7)
    eventually(lambda: redis_back(client))
    assert get_ok(client).json()["results"][0] == [agents[0].slug, 1]
    assert get_ok(client).json()["results"][0] == [agents[0].slug, 1]
    assert response_cache.lost_bump_pending() is False


def test_a_replayed_invalidation_that_fails_again_stays_pending(monkeypatch):
    """An epoch bump is the only trace of the invalidations it replays: it is never dropped."""
    store = response_cache.store()
    monkeypatch.setattr(response_cache, "_lost_bump", True)
    monkeypatch.setattr(store, "set_many", lambda values, **kwargs: [])  # the write fails
    response_cache.bump(["lists"])  # replays first
    assert response_cache.lost_bump_pending() is True
    monkeypatch.undo()
    response_cache._lost_bump = True
    epoch = response_cache._version_key(response_cache.EPOCH_NS)
    before = store.get_many([epoch]).get(epoch)
    response_cache.bump(["lists"])
    assert response_cache.lost_bump_pending() is False
    assert store.get_many([epoch]).get(epoch) != before
